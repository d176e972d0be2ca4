/* Unit tests for agent/spec.c: the OCI config parser.
 *
 * JSON in this file is written with single quotes for readability; q()
 * turns them into double quotes before parsing, and a backquote into a
 * real single quote. */
#include <errno.h>
#include <linux/capability.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kr/error.h"
#include "kr/util.h"
#include "../lib/kr_test.h"
#include "security.h"
#include "spec.h"

#define CAP(c) (1ull << (c))

static char *q(const char *s)
{
	char *d = kr_xstrdup(s);

	for (char *p = d; *p; p++) {
		if (*p == '\'')
			*p = '"';
		else if (*p == '`')
			*p = '\'';
	}
	return d;
}

/* A runc-style config with every field family we parse, plus fields we
 * must ignore (hooks, annotations, apparmor, blockIO, ...). */
static const char full_config[] =
	"{"
	" 'ociVersion': '1.0.2-dev',"
	" 'process': {"
	"  'terminal': true,"
	"  'consoleSize': { 'height': 25, 'width': 80 },"
	"  'user': { 'uid': 1000, 'gid': 1001, 'umask': 18,"
	"            'additionalGids': [5, 2000], 'username': 'ignored' },"
	"  'args': ['sh', '-c', 'echo hi'],"
	"  'env': ['PATH=/usr/bin:/bin', 'TERM=xterm', 'EMPTY=', 'A=1=2'],"
	"  'cwd': '/work',"
	"  'capabilities': {"
	"   'bounding': ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE',"
	"                'CAP_CHECKPOINT_RESTORE'],"
	"   'effective': ['CAP_KILL'],"
	"   'inheritable': ['CAP_CHOWN'],"
	"   'permitted': ['CAP_KILL', 'CAP_CHOWN'],"
	"   'ambient': ['CAP_CHOWN'] },"
	"  'rlimits': ["
	"   { 'type': 'RLIMIT_NOFILE', 'hard': 1024, 'soft': 512 },"
	"   { 'type': 'RLIMIT_CORE', 'hard': 18446744073709551615, 'soft': 0 } ],"
	"  'noNewPrivileges': true,"
	"  'oomScoreAdj': -500,"
	"  'apparmorProfile': 'ignored', 'selinuxLabel': 'ignored',"
	"  'ioPriority': { 'class': 'IOPRIO_CLASS_IDLE' }"
	" },"
	" 'root': { 'path': 'rootfs', 'readonly': true },"
	" 'hostname': 'box',"
	" 'mounts': ["
	"  { 'destination': '/proc', 'type': 'proc', 'source': 'proc' },"
	"  { 'destination': '/dev', 'type': 'tmpfs', 'source': 'tmpfs',"
	"    'options': ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },"
	"  { 'destination': '/data', 'type': 'bind', 'source': '/srv/data',"
	"    'options': ['rbind', 'ro', 'rprivate'] },"
	"  { 'destination': '/sys', 'type': 'sysfs', 'source': 'sysfs',"
	"    'options': ['nosuid', 'noexec', 'nodev', 'ro'] },"
	"  { 'destination': '/etc/hosts', 'source': '/run/hosts',"
	"    'options': ['bind', 'rw'] }"
	" ],"
	" 'hooks': { 'prestart': [ { 'path': '/bin/true' } ] },"
	" 'annotations': { 'io.kubernetes.cri.sandbox-id': 'abc' },"
	" 'linux': {"
	"  'uidMappings': [ { 'containerID': 0, 'hostID': 100000, 'size': 65536 } ],"
	"  'gidMappings': [ { 'containerID': 0, 'hostID': 200000, 'size': 1000 },"
	"                   { 'containerID': 1000, 'hostID': 1000, 'size': 1 } ],"
	"  'sysctl': { 'net.ipv4.ip_forward': '1', 'kernel.shmmax': '4096' },"
	"  'resources': {"
	"   'devices': [ { 'allow': false, 'access': 'rwm' } ],"
	"   'memory': { 'limit': 536870912, 'reservation': 268435456, 'swap': -1 },"
	"   'cpu': { 'shares': 1024, 'quota': 50000, 'period': 100000,"
	"            'cpus': '0-1', 'mems': '0', 'realtimeRuntime': 0 },"
	"   'pids': { 'limit': 100 },"
	"   'blockIO': { 'weight': 10 }, 'hugepageLimits': [],"
	"   'network': { 'classID': 1 }, 'unified': { 'memory.high': '1G' } },"
	"  'cgroupsPath': '/kata/abc',"
	"  'namespaces': [ { 'type': 'pid' },"
	"                  { 'type': 'network', 'path': '/proc/1/ns/net' },"
	"                  { 'type': 'ipc' }, { 'type': 'uts' }, { 'type': 'mount' },"
	"                  { 'type': 'user' }, { 'type': 'cgroup' } ],"
	"  'devices': [ { 'path': '/dev/fuse', 'type': 'c', 'major': 10,"
	"                 'minor': 229, 'fileMode': 438, 'uid': 0, 'gid': 5 },"
	"               { 'path': '/dev/fifo', 'type': 'p' } ],"
	"  'seccomp': {"
	"   'defaultAction': 'SCMP_ACT_ERRNO', 'defaultErrnoRet': 1,"
	"   'architectures': ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],"
	"   'flags': ['SECCOMP_FILTER_FLAG_LOG'],"
	"   'syscalls': ["
	"    { 'names': ['read', 'write', 'exit_group'], 'action': 'SCMP_ACT_ALLOW' },"
	"    { 'names': ['personality'], 'action': 'SCMP_ACT_ALLOW',"
	"      'args': [ { 'index': 0, 'value': 0, 'op': 'SCMP_CMP_EQ' },"
	"                { 'index': 0, 'value': 8, 'op': 'SCMP_CMP_EQ' } ] },"
	"    { 'names': ['clone'], 'action': 'SCMP_ACT_ALLOW',"
	"      'args': [ { 'index': 0, 'value': 2114060288, 'valueTwo': 0,"
	"                  'op': 'SCMP_CMP_MASKED_EQ' } ] },"
	"    { 'names': ['mkdir'], 'action': 'SCMP_ACT_ERRNO', 'errnoRet': 38 },"
	"    { 'names': ['ptrace'], 'action': 'SCMP_ACT_KILL_PROCESS' } ] },"
	"  'rootfsPropagation': 'rslave',"
	"  'maskedPaths': ['/proc/kcore', '/sys/firmware'],"
	"  'readonlyPaths': ['/proc/sys'],"
	"  'mountLabel': 'ignored', 'intelRdt': { 'closID': 'x' }"
	" }"
	"}";

static struct oci_spec *parse_q(const char *sq, struct kr_err *err)
{
	char *json = q(sq);
	struct oci_spec *spec = NULL;

	if (spec_parse(json, strlen(json), &spec, err) < 0)
		spec = NULL;
	free(json);
	return spec;
}

static void test_full_top_and_process(void)
{
	struct kr_err err = { 0 };
	struct oci_spec *s = parse_q(full_config, &err);

	REQUIRE(s);
	CHECK_STREQ(s->oci_version, "1.0.2-dev");
	CHECK_STREQ(s->root_path, "rootfs");
	CHECK(s->root_readonly);
	CHECK_STREQ(s->hostname, "box");
	CHECK(s->has_process);

	struct oci_process *p = &s->process;
	CHECK(p->terminal);
	CHECK(p->console_rows == 25 && p->console_cols == 80);
	CHECK(p->user.uid == 1000 && p->user.gid == 1001);
	CHECK(p->user.has_umask && p->user.umask == 022);
	REQUIRE(p->user.n_additional_gids == 2);
	CHECK(p->user.additional_gids[0] == 5 && p->user.additional_gids[1] == 2000);
	REQUIRE(p->n_args == 3);
	CHECK_STREQ(p->args[0], "sh");
	CHECK_STREQ(p->args[2], "echo hi");
	CHECK(p->args[3] == NULL);
	REQUIRE(p->n_env == 4);
	CHECK(p->env[4] == NULL);
	CHECK_STREQ(spec_getenv(p->env, "PATH"), "/usr/bin:/bin");
	CHECK_STREQ(spec_getenv(p->env, "EMPTY"), "");
	CHECK_STREQ(spec_getenv(p->env, "A"), "1=2");
	CHECK(spec_getenv(p->env, "PAT") == NULL);
	CHECK(spec_getenv(p->env, "NOPE") == NULL);
	CHECK(spec_getenv(NULL, "PATH") == NULL);
	CHECK_STREQ(p->cwd, "/work");
	CHECK(p->has_caps);
	CHECK(p->caps.bounding == (CAP(CAP_AUDIT_WRITE) | CAP(CAP_KILL) |
				   CAP(CAP_NET_BIND_SERVICE) |
				   CAP(CAP_CHECKPOINT_RESTORE)));
	CHECK(p->caps.effective == CAP(CAP_KILL));
	CHECK(p->caps.inheritable == CAP(CAP_CHOWN));
	CHECK(p->caps.permitted == (CAP(CAP_KILL) | CAP(CAP_CHOWN)));
	CHECK(p->caps.ambient == CAP(CAP_CHOWN));
	REQUIRE(p->n_rlimits == 2);
	CHECK(p->rlimits[0].resource == RLIMIT_NOFILE);
	CHECK(p->rlimits[0].hard == 1024 && p->rlimits[0].soft == 512);
	CHECK(p->rlimits[1].resource == RLIMIT_CORE);
	CHECK(p->rlimits[1].hard == UINT64_MAX && p->rlimits[1].soft == 0);
	CHECK(p->no_new_privileges);
	CHECK(p->has_oom_score_adj && p->oom_score_adj == -500);
	spec_free(s);
}

static void test_full_mounts(void)
{
	struct kr_err err = { 0 };
	struct oci_spec *s = parse_q(full_config, &err);

	REQUIRE(s);
	REQUIRE(s->n_mounts == 5);
	CHECK_STREQ(s->mounts[0].destination, "/proc");
	CHECK_STREQ(s->mounts[0].type, "proc");
	CHECK_STREQ(s->mounts[0].source, "proc");
	CHECK(s->mounts[0].flags == 0 && s->mounts[0].data == NULL);
	CHECK(s->mounts[1].flags == (MS_NOSUID | MS_STRICTATIME));
	CHECK_STREQ(s->mounts[1].data, "mode=755,size=65536k");
	CHECK(s->mounts[2].bind);
	CHECK(s->mounts[2].flags == (MS_BIND | MS_REC | MS_RDONLY));
	CHECK(s->mounts[2].propagation == (MS_PRIVATE | MS_REC));
	CHECK(s->mounts[3].flags == (MS_NOSUID | MS_NOEXEC | MS_NODEV | MS_RDONLY));
	CHECK(s->mounts[4].type == NULL);
	CHECK(s->mounts[4].bind && s->mounts[4].flags == MS_BIND);
	CHECK(s->mounts[4].clear_flags == MS_RDONLY);
	spec_free(s);
}

static void test_full_linux(void)
{
	struct kr_err err = { 0 };
	struct oci_spec *s = parse_q(full_config, &err);

	REQUIRE(s);
	REQUIRE(s->n_uid_mappings == 1 && s->n_gid_mappings == 2);
	CHECK(s->uid_mappings[0].container_id == 0);
	CHECK(s->uid_mappings[0].host_id == 100000);
	CHECK(s->uid_mappings[0].size == 65536);
	CHECK(s->gid_mappings[1].container_id == 1000 &&
	      s->gid_mappings[1].host_id == 1000 && s->gid_mappings[1].size == 1);
	REQUIRE(s->n_sysctls == 2);
	CHECK_STREQ(s->sysctls[0].key, "net.ipv4.ip_forward");
	CHECK_STREQ(s->sysctls[0].value, "1");
	CHECK_STREQ(s->sysctls[1].key, "kernel.shmmax");
	CHECK_STREQ(s->cgroups_path, "/kata/abc");
	REQUIRE(s->n_namespaces == 7);
	CHECK(spec_has_namespace(s, CLONE_NEWPID));
	CHECK(spec_has_namespace(s, CLONE_NEWCGROUP));
#ifdef CLONE_NEWTIME
	CHECK(!spec_has_namespace(s, CLONE_NEWTIME));
#endif
	CHECK_STREQ(spec_namespace(s, CLONE_NEWNET)->path, "/proc/1/ns/net");
	CHECK(spec_namespace(s, CLONE_NEWNS)->path == NULL);
	CHECK(s->namespaces[4].type == CLONE_NEWNS);
	REQUIRE(s->n_devices == 2);
	CHECK_STREQ(s->devices[0].path, "/dev/fuse");
	CHECK(s->devices[0].type == 'c' && s->devices[0].major == 10 &&
	      s->devices[0].minor == 229);
	CHECK(s->devices[0].has_mode && s->devices[0].file_mode == 0666);
	CHECK(s->devices[0].has_uid && s->devices[0].uid == 0);
	CHECK(s->devices[0].has_gid && s->devices[0].gid == 5);
	CHECK(s->devices[1].type == 'p' && !s->devices[1].has_mode &&
	      !s->devices[1].has_uid);
	CHECK_STREQ(s->rootfs_propagation, "rslave");
	REQUIRE(s->n_masked_paths == 2 && s->n_readonly_paths == 1);
	CHECK_STREQ(s->masked_paths[1], "/sys/firmware");
	CHECK(s->masked_paths[2] == NULL);
	CHECK_STREQ(s->readonly_paths[0], "/proc/sys");
	spec_free(s);
}

static void test_full_resources(void)
{
	struct kr_err err = { 0 };
	struct oci_spec *s = parse_q(full_config, &err);

	REQUIRE(s);
	struct oci_resources *r = &s->resources;
	CHECK(r->has_memory_limit && r->memory_limit == 536870912);
	CHECK(r->has_memory_reservation && r->memory_reservation == 268435456);
	CHECK(r->has_memory_swap && r->memory_swap == -1);
	CHECK(r->has_cpu_shares && r->cpu_shares == 1024);
	CHECK(r->has_cpu_quota && r->cpu_quota == 50000);
	CHECK(r->has_cpu_period && r->cpu_period == 100000);
	CHECK_STREQ(r->cpuset_cpus, "0-1");
	CHECK_STREQ(r->cpuset_mems, "0");
	CHECK(r->has_pids_limit && r->pids_limit == 100);
	spec_free(s);
}

static void test_full_seccomp(void)
{
	struct kr_err err = { 0 };
	struct oci_spec *s = parse_q(full_config, &err);

	REQUIRE(s);
	struct oci_seccomp *sc = s->seccomp;
	REQUIRE(sc);
	CHECK(sc->default_action == OCI_SECCOMP_ERRNO);
	CHECK(sc->has_default_errno_ret && sc->default_errno_ret == 1);
	REQUIRE(sc->n_architectures == 3);
	CHECK_STREQ(sc->architectures[2], "SCMP_ARCH_X32");
	REQUIRE(sc->n_rules == 5);
	CHECK(sc->rules[0].n_names == 3 && sc->rules[0].action == OCI_SECCOMP_ALLOW);
	CHECK_STREQ(sc->rules[0].names[2], "exit_group");
	CHECK(!sc->rules[0].has_errno_ret && sc->rules[0].n_args == 0);
	REQUIRE(sc->rules[1].n_args == 2);
	CHECK(sc->rules[1].args[1].index == 0 && sc->rules[1].args[1].value == 8 &&
	      sc->rules[1].args[1].op == OCI_SCMP_EQ);
	REQUIRE(sc->rules[2].n_args == 1);
	CHECK(sc->rules[2].args[0].op == OCI_SCMP_MASKED_EQ);
	CHECK(sc->rules[2].args[0].value == 2114060288);
	CHECK(sc->rules[2].args[0].value_two == 0);
	CHECK(sc->rules[3].action == OCI_SECCOMP_ERRNO &&
	      sc->rules[3].has_errno_ret && sc->rules[3].errno_ret == 38);
	CHECK(sc->rules[4].action == OCI_SECCOMP_KILL_PROCESS);
	spec_free(s);
}

static void test_minimal_defaults(void)
{
	struct kr_err err = { 0 };
	struct oci_spec *s = parse_q("{ 'process': { 'args': ['true'] } }", &err);

	REQUIRE(s);
	CHECK(s->oci_version == NULL);
	CHECK_STREQ(s->root_path, "rootfs");	/* header's default */
	CHECK(!s->root_readonly && s->hostname == NULL);
	CHECK(s->has_process);
	CHECK_STREQ(s->process.cwd, "/");
	REQUIRE(s->process.env);	/* empty, ready for execve */
	CHECK(s->process.n_env == 0 && s->process.env[0] == NULL);
	CHECK(!s->process.has_caps && !s->process.user.has_umask);
	CHECK(s->process.user.uid == 0 && s->process.user.n_additional_gids == 0);
	CHECK(!s->process.has_oom_score_adj);
	CHECK(s->n_mounts == 0 && s->mounts == NULL);
	CHECK(s->seccomp == NULL && s->cgroups_path == NULL);
	CHECK(!s->resources.has_memory_limit && !s->resources.has_pids_limit);
	CHECK(!spec_has_namespace(s, CLONE_NEWPID));
	spec_free(s);

	/* No process at all (a sandbox's pause container may have none);
	 * null counts as absent, as in Go. */
	s = parse_q("{ 'hostname': null, 'linux': { 'namespaces': [ "
		    "{ 'type': 'time' } ] } }", &err);
	REQUIRE(s);
	CHECK(!s->has_process && s->process.n_args == 0);
	CHECK(s->hostname == NULL);
#ifdef CLONE_NEWTIME
	CHECK(spec_has_namespace(s, CLONE_NEWTIME));
#endif
	spec_free(s);

	s = parse_q("{ 'linux': { 'rootfsPropagation': '' } }", &err);
	REQUIRE(s);
	CHECK(s->rootfs_propagation == NULL);
	spec_free(s);
	spec_free(NULL);
}

/* ---- errors name the field ------------------------------------------------ */

struct err_case {
	const char *json;	/* single-quoted */
	const char *msg;	/* expected substring */
};

#define PROC(x) "{ 'process': { 'args': ['sh'], " x " } }"
#define LNX(x) "{ 'linux': { " x " } }"

static const struct err_case spec_errors[] = {
	/* wrong types and ranges */
	{ PROC("'user': { 'uid': '0' }"),
	  "process.user.uid: expected an unsigned 32-bit integer" },
	{ PROC("'user': { 'uid': -1 }"),
	  "process.user.uid: expected an unsigned 32-bit integer" },
	{ PROC("'user': { 'uid': 4294967296 }"),
	  "process.user.uid: expected an unsigned 32-bit integer" },
	{ PROC("'user': { 'uid': 1.0 }"),
	  "process.user.uid: expected an unsigned 32-bit integer" },
	{ PROC("'user': { 'uid': 4294967295 }"),
	  "process.user.uid: 4294967295 is not a valid user id" },
	{ PROC("'user': { 'gid': true }"),
	  "process.user.gid: expected an unsigned 32-bit integer" },
	{ PROC("'user': { 'umask': 512 }"),
	  "process.user.umask: expected an integer in [0, 0777]" },
	{ PROC("'user': { 'additionalGids': [1, 'a'] }"),
	  "process.user.additionalGids[1]: expected an unsigned 32-bit integer" },
	{ PROC("'user': 5"), "process.user: expected an object" },
	{ PROC("'terminal': 'yes'"), "process.terminal: expected a boolean" },
	{ PROC("'consoleSize': { 'height': 70000 }"),
	  "process.consoleSize.height: expected an unsigned 16-bit integer" },
	{ PROC("'oomScoreAdj': 1001"),
	  "process.oomScoreAdj: expected an integer in [-1000, 1000]" },
	{ PROC("'noNewPrivileges': 1"),
	  "process.noNewPrivileges: expected a boolean" },
	{ "{ 'process': { 'cwd': '/' } }", "process.args: required" },
	{ "{ 'process': { 'args': [] } }", "process.args: must not be empty" },
	{ "{ 'process': { 'args': 'sh' } }", "process.args: expected an array" },
	{ "{ 'process': { 'args': ['sh', 1] } }",
	  "process.args[1]: expected a string" },
	{ "{ 'process': { 'args': ['sh\\u0000x'] } }",
	  "process.args[0]: string contains a NUL character" },
	{ PROC("'env': ['A=1', 'FOO']"),
	  "process.env[1]: invalid environment variable: missing '='" },
	{ PROC("'env': ['=x']"), "process.env[0]: invalid environment variable: empty name" },
	{ PROC("'cwd': 'relative/dir'"), "process.cwd: must be an absolute path" },
	{ PROC("'cwd': 7"), "process.cwd: expected a string" },
	{ PROC("'capabilities': { 'bounding': ['CAP_KILL', 'CAP_FOO'] }"),
	  "process.capabilities.bounding[1]: unknown capability \"CAP_FOO\"" },
	{ PROC("'capabilities': { 'ambient': ['kill'] }"),
	  "process.capabilities.ambient[0]: unknown capability \"kill\"" },
	{ PROC("'capabilities': { 'effective': [3] }"),
	  "process.capabilities.effective[0]: expected a string" },
	{ PROC("'capabilities': []"), "process.capabilities: expected an object" },
	{ PROC("'rlimits': [ { 'type': 'RLIMIT_FOO', 'hard': 1, 'soft': 1 } ]"),
	  "process.rlimits[0].type: unknown rlimit \"RLIMIT_FOO\"" },
	{ PROC("'rlimits': [ { 'type': 'RLIMIT_NOFILE', 'hard': 1 } ]"),
	  "process.rlimits[0].soft: required" },
	{ PROC("'rlimits': [ { 'hard': 1, 'soft': 1 } ]"),
	  "process.rlimits[0].type: required" },
	{ PROC("'rlimits': [ { 'type': 'RLIMIT_NOFILE', 'hard': -1, 'soft': 1 } ]"),
	  "process.rlimits[0].hard: expected an unsigned 64-bit integer" },
	{ PROC("'rlimits': [ { 'type': 'RLIMIT_NOFILE', 'hard': 1, 'soft': 1 },"
	       " { 'type': 'RLIMIT_NOFILE', 'hard': 2, 'soft': 2 } ]"),
	  "process.rlimits[1].type: duplicate rlimit \"RLIMIT_NOFILE\"" },
	{ "{ 'process': 1 }", "process: expected an object" },
	/* top level and mounts */
	{ "{ 'hostname': 5 }", "hostname: expected a string" },
	{ "{ 'ociVersion': [] }", "ociVersion: expected a string" },
	{ "{ 'root': { 'path': '' } }", "root.path: must not be empty" },
	{ "{ 'root': { 'readonly': 'no' } }", "root.readonly: expected a boolean" },
	{ "{ 'mounts': {} }", "mounts: expected an array" },
	{ "{ 'mounts': [ { 'destination': '/a' }, { 'destination': '/b' },"
	  " { 'destination': 'c' } ] }",
	  "mounts[2].destination: must be an absolute path" },
	{ "{ 'mounts': [ { 'type': 'tmpfs' } ] }", "mounts[0].destination: required" },
	{ "{ 'mounts': [ 5 ] }", "mounts[0]: expected an object" },
	{ "{ 'mounts': [ { 'destination': '/a', 'options': ['ro', 5] } ] }",
	  "mounts[0].options[1]: expected a string" },
	{ "{ 'mounts': [ { 'destination': '/a', 'options': ['rro'] } ] }",
	  "mounts[0].options[0]: mount option \"rro\" is not supported" },
	{ "{ 'mounts': [ { 'destination': '/a', 'source': 1 } ] }",
	  "mounts[0].source: expected a string" },
	/* linux */
	{ "{ 'linux': [] }", "linux: expected an object" },
	{ LNX("'namespaces': [ { 'type': 'foo' } ]"),
	  "linux.namespaces[0].type: unknown namespace \"foo\"" },
	{ LNX("'namespaces': [ { 'type': 'pid' }, { 'type': 'pid' } ]"),
	  "linux.namespaces[1].type: duplicate namespace \"pid\"" },
	{ LNX("'namespaces': [ { 'type': 'net', 'path': 'x' } ]"),
	  "linux.namespaces[0].type: unknown namespace \"net\"" },
	{ LNX("'namespaces': [ { 'type': 'network', 'path': 'x' } ]"),
	  "linux.namespaces[0].path: must be an absolute path" },
	{ LNX("'namespaces': [ { 'path': '/x' } ]"),
	  "linux.namespaces[0].type: required" },
	{ LNX("'uidMappings': [ { 'containerID': 0, 'hostID': 1, 'size': 0 } ]"),
	  "linux.uidMappings[0].size: must not be 0" },
	{ LNX("'gidMappings': [ { 'containerID': 0, 'size': 1 } ]"),
	  "linux.gidMappings[0].hostID: required" },
	{ LNX("'devices': [ { 'path': '/dev/x', 'type': 'x' } ]"),
	  "linux.devices[0].type: unknown device type \"x\"" },
	{ LNX("'devices': [ { 'path': '/dev/x', 'type': 'c', 'minor': 1 } ]"),
	  "linux.devices[0].major: required" },
	{ LNX("'devices': [ { 'path': 'dev/x', 'type': 'p' } ]"),
	  "linux.devices[0].path: must be an absolute path" },
	{ LNX("'devices': [ { 'path': '/dev/x', 'type': 'b', 'major': 1,"
	      " 'minor': 1, 'fileMode': 4096 } ]"),
	  "linux.devices[0].fileMode: expected an integer in [0, 07777]" },
	{ LNX("'devices': [ { 'path': '/dev/x', 'type': 'b', 'major': -1,"
	      " 'minor': 1 } ]"),
	  "linux.devices[0].major: expected an integer in [0, 4294967295]" },
	{ LNX("'resources': { 'memory': { 'limit': 'big' } }"),
	  "linux.resources.memory.limit: expected a 64-bit integer" },
	{ LNX("'resources': { 'memory': { 'limit': 9223372036854775808 } }"),
	  "linux.resources.memory.limit: expected a 64-bit integer" },
	{ LNX("'resources': { 'cpu': { 'shares': -2 } }"),
	  "linux.resources.cpu.shares: expected an unsigned 64-bit integer" },
	{ LNX("'resources': { 'cpu': { 'cpus': 5 } }"),
	  "linux.resources.cpu.cpus: expected a string" },
	{ LNX("'resources': { 'pids': { 'limit': 1.5 } }"),
	  "linux.resources.pids.limit: expected a 64-bit integer" },
	{ LNX("'resources': { 'memory': 1 }"),
	  "linux.resources.memory: expected an object" },
	{ LNX("'sysctl': { 'net.ipv4.ip_forward': 1 }"),
	  "linux.sysctl.net.ipv4.ip_forward: expected a string" },
	{ LNX("'sysctl': []"), "linux.sysctl: expected an object" },
	{ LNX("'cgroupsPath': false"), "linux.cgroupsPath: expected a string" },
	{ LNX("'maskedPaths': ['/ok', 'proc/kcore']"),
	  "linux.maskedPaths[1]: must be an absolute path" },
	{ LNX("'readonlyPaths': [null]"), "linux.readonlyPaths[0]: expected a string" },
	{ LNX("'rootfsPropagation': 'foo'"),
	  "linux.rootfsPropagation: unknown propagation \"foo\"" },
	{ LNX("'seccomp': { 'syscalls': [] }"),
	  "linux.seccomp.defaultAction: required" },
	{ LNX("'seccomp': { 'defaultAction': 'SCMP_ACT_FOO' }"),
	  "linux.seccomp.defaultAction: unknown action \"SCMP_ACT_FOO\"" },
	{ LNX("'seccomp': { 'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls':"
	      " [ { 'names': ['read'], 'action': 'SCMP_ACT_NOTIFY' } ] }"),
	  "linux.seccomp.syscalls[0].action: unknown action \"SCMP_ACT_NOTIFY\"" },
	{ LNX("'seccomp': { 'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls':"
	      " [ { 'names': [], 'action': 'SCMP_ACT_LOG' } ] }"),
	  "linux.seccomp.syscalls[0].names: must not be empty" },
	{ LNX("'seccomp': { 'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls':"
	      " [ { 'action': 'SCMP_ACT_LOG' } ] }"),
	  "linux.seccomp.syscalls[0].names: required" },
	{ LNX("'seccomp': { 'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls':"
	      " [ { 'names': ['read'], 'action': 'SCMP_ACT_ERRNO',"
	      " 'errnoRet': 70000 } ] }"),
	  "linux.seccomp.syscalls[0].errnoRet: expected an unsigned 16-bit integer" },
	{ LNX("'seccomp': { 'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls':"
	      " [ { 'names': ['read'], 'action': 'SCMP_ACT_ERRNO', 'args':"
	      " [ { 'index': 6, 'value': 1, 'op': 'SCMP_CMP_EQ' } ] } ] }"),
	  "linux.seccomp.syscalls[0].args[0].index: expected an integer in [0, 5]" },
	{ LNX("'seccomp': { 'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls':"
	      " [ { 'names': ['read'], 'action': 'SCMP_ACT_ERRNO', 'args':"
	      " [ { 'index': 1, 'value': 1, 'op': 'SCMP_CMP_FOO' } ] } ] }"),
	  "linux.seccomp.syscalls[0].args[0].op: unknown operator \"SCMP_CMP_FOO\"" },
	{ LNX("'seccomp': { 'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls':"
	      " [ { 'names': ['read'], 'action': 'SCMP_ACT_ERRNO', 'args':"
	      " [ { 'value': 1, 'op': 'SCMP_CMP_EQ' } ] } ] }"),
	  "linux.seccomp.syscalls[0].args[0].index: required" },
	{ LNX("'seccomp': { 'defaultAction': 'SCMP_ACT_ALLOW',"
	      " 'architectures': 'SCMP_ARCH_X86' }"),
	  "linux.seccomp.architectures: expected an array" },
	/* strict JSON */
	{ "", "invalid JSON at offset 0: unexpected end of input" },
	{ "{ 'a': ", "invalid JSON at offset 7: unexpected end of input" },
	{ "{} x", "invalid JSON at offset 3" },
	{ "{}{}", "invalid JSON at offset 2" },
	{ "{ 'a': 1, }", "invalid JSON at offset 10" },
	{ "[]", "invalid JSON at offset 0: the top level must be an object" },
	{ "  1", "invalid JSON at offset 2: the top level must be an object" },
	{ "{ 'a': `single` }", "invalid JSON at offset 7: unexpected character" },
	{ "{ 'a': NaN }", "invalid JSON at offset 7: unexpected token" },
	{ "{ 'a': -Infinity }", "invalid JSON at offset 7: invalid number" },
	{ "{ 'a': 1. }", "invalid JSON at offset 7: invalid number" },
	{ "{ 'a': 01 }", "invalid JSON at offset 7: invalid number" },
	{ "{ 'a': 1e+ }", "invalid JSON at offset 7: invalid number" },
	{ "{ 'a': -0.5e-3, 'b': 1E9, 'c': 'x\ny' }",
	  "invalid JSON at offset 33: control character in string" },
	{ "{ 'a': True }", "invalid JSON at offset 7: unexpected token" },
	{ "{ 'a': 18446744073709551616 }",
	  "invalid JSON at offset 7: integer out of range" },
	{ "{ 'a': -9223372036854775809 }",
	  "invalid JSON at offset 7: integer out of range" },
	{ "{ 'a': 1 /* c */ }", "invalid JSON at offset" },
	{ "{ 'a': '\xff' }", "invalid JSON at offset 8: invalid utf-8" },
};

static void test_errors_name_the_field(void)
{
	for (size_t i = 0; i < KR_ARRAY_SIZE(spec_errors); i++) {
		struct kr_err err = { 0 };
		struct oci_spec *s = parse_q(spec_errors[i].json, &err);

		CHECKF(s == NULL, "case %zu parsed: %s", i, spec_errors[i].json);
		spec_free(s);
		CHECKF(strstr(err.msg, spec_errors[i].msg) != NULL,
		       "case %zu: got \"%s\", want \"%s\"", i, err.msg,
		       spec_errors[i].msg);
		CHECK(err.code == KR_INVALID_ARGUMENT);
	}
}

/* Integer edges that must parse. */
static void test_integer_edges(void)
{
	struct kr_err err = { 0 };
	struct oci_spec *s = parse_q(
		"{ 'process': { 'args': ['a'], 'user': { 'uid': 4294967294,"
		" 'gid': 0, 'umask': 511 }, 'oomScoreAdj': 1000,"
		" 'rlimits': [ { 'type': 'RLIMIT_AS', 'hard': 18446744073709551615,"
		" 'soft': 18446744073709551615 } ] },"
		" 'linux': { 'resources': { 'memory': { 'limit': 9223372036854775807,"
		" 'swap': -9223372036854775808 }, 'pids': { 'limit': -1 } },"
		" 'unknown': -0 } }", &err);

	CHECKF(s != NULL, "%s", err.msg);
	if (!s)
		return;
	CHECK(s->process.user.uid == 4294967294u);
	CHECK(s->process.user.umask == 0777 && s->process.oom_score_adj == 1000);
	CHECK(s->process.rlimits[0].soft == UINT64_MAX);
	CHECK(s->resources.memory_limit == INT64_MAX);
	CHECK(s->resources.memory_swap == INT64_MIN);
	CHECK(s->resources.pids_limit == -1);
	spec_free(s);
}

static void test_json_limits(void)
{
	struct kr_err err = { 0 };
	struct oci_spec *s = NULL;
	size_t big = OCI_SPEC_MAX_BYTES + 1;
	char *buf = malloc(big + 1);
	char deep[300];
	size_t n;

	REQUIRE(buf);
	/* Too large, even though it is valid JSON. */
	memset(buf, ' ', big);
	buf[0] = '{';
	buf[big - 1] = '}';
	CHECK(spec_parse(buf, big, &s, &err) < 0 && s == NULL);
	CHECK_CONTAINS(err.msg, "1048577 bytes, more than the 1048576 allowed");
	/* Exactly at the limit: fine. */
	CHECK(spec_parse(buf + 1, big - 1, &s, &err) < 0);	/* starts with ' ' then '}' */
	buf[1] = '{';
	CHECK(spec_parse(buf + 1, big - 1, &s, &err) == 0);
	spec_free(s);
	free(buf);

	/* Deep nesting inside an ignored field. */
	n = (size_t)snprintf(deep, sizeof(deep), "{\"annotations\":");
	for (int i = 0; i < 100; i++)
		deep[n++] = '[';
	deep[n] = '\0';
	CHECK(spec_parse(deep, n, &s, &err) < 0);
	CHECK_CONTAINS(err.msg, "nesting too deep");

	/* Breadth: json-c would spend ~800 bytes on each empty object. */
	buf = malloc(3 * 40000 + 32);
	REQUIRE(buf);
	n = (size_t)sprintf(buf, "{\"annotations\":[");
	for (int i = 0; i < 40000; i++)
		n += (size_t)sprintf(buf + n, "%s{}", i ? "," : "");
	n += (size_t)sprintf(buf + n, "]}");
	CHECK(spec_parse(buf, n, &s, &err) < 0);
	CHECK_CONTAINS(err.msg, "more than 32768 objects and arrays");
	free(buf);

	/* An embedded NUL after the object, and a NULL buffer. */
	CHECK(spec_parse("{}\0", 3, &s, &err) < 0);
	CHECK_CONTAINS(err.msg, "invalid JSON at offset 2");
	CHECK(spec_parse(NULL, 0, &s, &err) < 0);
	CHECK_CONTAINS(err.msg, "unexpected end of input");
	CHECK(spec_parse("{}  \n", 5, &s, &err) == 0);	/* trailing space is fine */
	spec_free(s);
}

static void test_count_caps(void)
{
	struct kr_err err = { 0 };
	struct oci_spec *s = NULL;
	size_t cap = 64 * 1024;
	char *buf = malloc(cap);
	size_t n;

	REQUIRE(buf);
	n = (size_t)snprintf(buf, cap, "{\"mounts\":[");
	for (int i = 0; i < 1025; i++)
		n += (size_t)snprintf(buf + n, cap - n, "%s{\"destination\":\"/\"}",
				      i ? "," : "");
	n += (size_t)snprintf(buf + n, cap - n, "]}");
	CHECK(spec_parse(buf, n, &s, &err) < 0);
	CHECK_CONTAINS(err.msg, "mounts: too many entries (1025, at most 1024)");

	/* More than a page of fs data for one mount. */
	n = (size_t)snprintf(buf, cap, "{\"mounts\":[{\"destination\":\"/x\","
			     "\"options\":[");
	for (int i = 0; i < 60; i++)
		n += (size_t)snprintf(buf + n, cap - n, "%s\"opt%02d=%0100d\"",
				      i ? "," : "", i, 0);
	n += (size_t)snprintf(buf + n, cap - n, "]}]}");
	CHECK(spec_parse(buf, n, &s, &err) < 0);
	CHECK_CONTAINS(err.msg, "mounts[0].options: filesystem data longer than 4095 bytes");
	free(buf);
}

/* ---- mount options, table-driven ----------------------------------------- */

struct mopt_case {
	const char *options;	/* JSON array body, single-quoted */
	unsigned long flags, clear;
	unsigned long propagation;
	bool bind;
	const char *data;
};

static const struct mopt_case mopt_cases[] = {
	{ "'ro'", MS_RDONLY, 0, 0, false, NULL },
	{ "'rw'", 0, MS_RDONLY, 0, false, NULL },
	{ "'ro', 'rw'", 0, MS_RDONLY, 0, false, NULL },
	{ "'rw', 'ro'", MS_RDONLY, 0, 0, false, NULL },
	{ "'nosuid', 'suid'", 0, MS_NOSUID, 0, false, NULL },
	{ "'nodev', 'noexec', 'nosuid'", MS_NODEV | MS_NOEXEC | MS_NOSUID, 0, 0,
	  false, NULL },
	{ "'dev', 'exec', 'suid'", 0, MS_NODEV | MS_NOEXEC | MS_NOSUID, 0,
	  false, NULL },
	{ "'sync'", MS_SYNCHRONOUS, 0, 0, false, NULL },
	{ "'async'", 0, MS_SYNCHRONOUS, 0, false, NULL },
	{ "'dirsync'", MS_DIRSYNC, 0, 0, false, NULL },
	{ "'remount', 'ro'", MS_REMOUNT | MS_RDONLY, 0, 0, false, NULL },
	{ "'mand'", MS_MANDLOCK, 0, 0, false, NULL },
	{ "'nomand'", 0, MS_MANDLOCK, 0, false, NULL },
	{ "'noatime', 'nodiratime'", MS_NOATIME | MS_NODIRATIME, 0, 0, false,
	  NULL },
	{ "'atime', 'diratime'", 0, MS_NOATIME | MS_NODIRATIME, 0, false, NULL },
	{ "'relatime'", MS_RELATIME, 0, 0, false, NULL },
	{ "'norelatime'", 0, MS_RELATIME, 0, false, NULL },
	{ "'strictatime'", MS_STRICTATIME, 0, 0, false, NULL },
	{ "'nostrictatime'", 0, MS_STRICTATIME, 0, false, NULL },
	{ "'bind'", MS_BIND, 0, 0, true, NULL },
	{ "'rbind'", MS_BIND | MS_REC, 0, 0, true, NULL },
	{ "'private'", 0, 0, MS_PRIVATE, false, NULL },
	{ "'rprivate'", 0, 0, MS_PRIVATE | MS_REC, false, NULL },
	{ "'shared'", 0, 0, MS_SHARED, false, NULL },
	{ "'rshared'", 0, 0, MS_SHARED | MS_REC, false, NULL },
	{ "'slave'", 0, 0, MS_SLAVE, false, NULL },
	{ "'rslave'", 0, 0, MS_SLAVE | MS_REC, false, NULL },
	{ "'unbindable'", 0, 0, MS_UNBINDABLE, false, NULL },
	{ "'runbindable'", 0, 0, MS_UNBINDABLE | MS_REC, false, NULL },
	{ "'shared', 'rslave'", 0, 0, MS_SLAVE | MS_REC, false, NULL },
	{ "'defaults'", 0, 0, 0, false, NULL },
	{ "'mode=755', 'size=65536k'", 0, 0, 0, false, "mode=755,size=65536k" },
	{ "'nosuid', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'",
	  MS_NOSUID, 0, 0, false, "newinstance,ptmxmode=0666,mode=0620,gid=5" },
	{ "'rbind', 'ro', 'rprivate', 'lowerdir=/a:/b'", MS_BIND | MS_REC | MS_RDONLY,
	  0, MS_PRIVATE | MS_REC, true, "lowerdir=/a:/b" },
	{ "", 0, 0, 0, false, NULL },
	{ "''", 0, 0, 0, false, NULL },
};

static void test_mount_options(void)
{
	char body[512];

	for (size_t i = 0; i < KR_ARRAY_SIZE(mopt_cases); i++) {
		const struct mopt_case *c = &mopt_cases[i];
		struct kr_err err = { 0 };
		struct oci_spec *s;

		snprintf(body, sizeof(body),
			 "{ 'mounts': [ { 'destination': '/m', 'options': [ %s ] } ] }",
			 c->options);
		s = parse_q(body, &err);
		CHECKF(s != NULL, "case %zu: %s", i, err.msg);
		if (!s)
			continue;
		struct oci_mount *m = &s->mounts[0];
		CHECKF(m->flags == c->flags, "case %zu: flags %#lx want %#lx", i,
		       m->flags, c->flags);
		CHECKF(m->clear_flags == c->clear, "case %zu: clear %#lx want %#lx",
		       i, m->clear_flags, c->clear);
		CHECKF(m->propagation == c->propagation,
		       "case %zu: propagation %#lx want %#lx", i, m->propagation,
		       c->propagation);
		CHECKF(m->bind == c->bind, "case %zu: bind", i);
		if (c->data)
			CHECK_STREQ(m->data, c->data);
		else
			CHECKF(m->data == NULL, "case %zu: data %s", i, m->data);
		spec_free(s);
	}
}

/* ---- the process-only and resources-only parsers -------------------------- */

static void test_parse_process(void)
{
	struct kr_err err = { 0 };
	struct oci_process *p = NULL;
	char *json = q("{ 'args': ['ls', '-l'], 'cwd': '/tmp', 'terminal': true,"
		       " 'user': { 'uid': 5, 'gid': 6 }, 'env': ['X=y'],"
		       " 'capabilities': { 'bounding': ['CAP_SYS_ADMIN'] } }");

	REQUIRE(spec_parse_process(json, strlen(json), &p, &err) == 0);
	free(json);
	REQUIRE(p);
	CHECK(p->n_args == 2);
	CHECK_STREQ(p->args[1], "-l");
	CHECK_STREQ(p->cwd, "/tmp");
	CHECK(p->terminal && p->user.uid == 5 && p->user.gid == 6);
	CHECK_STREQ(spec_getenv(p->env, "X"), "y");
	CHECK(p->has_caps && p->caps.bounding == CAP(CAP_SYS_ADMIN));
	CHECK(p->caps.effective == 0);
	spec_process_free(p);
	spec_process_free(NULL);

	/* Paths are relative to the process object itself. */
	json = q("{ 'args': ['ls'], 'user': { 'uid': 'x' } }");
	CHECK(spec_parse_process(json, strlen(json), &p, &err) < 0 && p == NULL);
	CHECK_STREQ(err.msg, "user.uid: expected an unsigned 32-bit integer");
	free(json);
	json = q("{ 'cwd': 'x' }");
	CHECK(spec_parse_process(json, strlen(json), &p, &err) < 0);
	CHECK_STREQ(err.msg, "args: required");
	free(json);
	json = q("{ 'args': ['a'], 'cwd': 'x' }");
	CHECK(spec_parse_process(json, strlen(json), &p, &err) < 0);
	CHECK_STREQ(err.msg, "cwd: must be an absolute path");
	free(json);
	CHECK(spec_parse_process("[\"ls\"]", 6, &p, &err) < 0);
	CHECK_CONTAINS(err.msg, "top level must be an object");
}

static void test_parse_resources(void)
{
	struct kr_err err = { 0 };
	struct oci_resources r;
	char *json = q("{ 'memory': { 'limit': -1, 'swap': 1073741824 },"
		       " 'cpu': { 'cpus': '0', 'quota': -1 },"
		       " 'pids': { 'limit': 0 }, 'blockIO': { 'weight': 1 } }");

	REQUIRE(spec_parse_resources(json, strlen(json), &r, &err) == 0);
	free(json);
	CHECK(r.has_memory_limit && r.memory_limit == -1);
	CHECK(!r.has_memory_reservation);
	CHECK(r.has_memory_swap && r.memory_swap == 1073741824);
	CHECK(r.has_cpu_quota && r.cpu_quota == -1);
	CHECK(!r.has_cpu_shares && !r.has_cpu_period);
	CHECK_STREQ(r.cpuset_cpus, "0");
	CHECK(r.cpuset_mems == NULL);
	CHECK(r.has_pids_limit && r.pids_limit == 0);
	spec_resources_release(&r);
	CHECK(r.cpuset_cpus == NULL);

	/* A failure after a string was taken leaves nothing allocated. */
	json = q("{ 'cpu': { 'cpus': '0-3', 'mems': 1 } }");
	CHECK(spec_parse_resources(json, strlen(json), &r, &err) < 0);
	CHECK_STREQ(err.msg, "cpu.mems: expected a string");
	CHECK(r.cpuset_cpus == NULL);
	free(json);
	json = q("{ 'memory': { 'reservation': 'x' } }");
	CHECK(spec_parse_resources(json, strlen(json), &r, &err) < 0);
	CHECK_STREQ(err.msg, "memory.reservation: expected a 64-bit integer");
	free(json);
	CHECK(spec_parse_resources("{} {", 4, &r, &err) < 0);
	CHECK_CONTAINS(err.msg, "invalid JSON at offset 3");
}

/* ---- capability names ----------------------------------------------------- */

static void test_cap_names(void)
{
	for (int c = 0; c <= 40; c++) {
		const char *n = caps_name(c);

		CHECKF(n != NULL, "cap %d has no name", c);
		if (n)
			CHECK(caps_from_name(n) == c);
	}
	CHECK(caps_from_name("CAP_SYS_ADMIN") == 21);
	CHECK(caps_from_name("CAP_CHECKPOINT_RESTORE") == 40);
	CHECK(caps_from_name("CAP_BPF") == 39);
	CHECK(caps_from_name("cap_sys_admin") == -1);
	CHECK(caps_from_name("SYS_ADMIN") == -1);
	CHECK(caps_from_name("") == -1);
	CHECK(caps_from_name(NULL) == -1);
	CHECK(caps_name(41) == NULL && caps_name(-1) == NULL);
}

/* ---- differential: whatever `runc spec` writes must parse ------------------ */

static int runc_spec(const char *dir, bool rootless)
{
	pid_t pid = fork();
	int status;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (chdir(dir) < 0)
			_exit(127);
		freopen("/dev/null", "w", stderr);
		if (rootless)
			execl("/usr/sbin/runc", "runc", "spec", "--rootless", NULL);
		else
			execl("/usr/sbin/runc", "runc", "spec", NULL);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0)
		return -1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static void check_runc_config(const char *dir, bool rootless)
{
	char path[256], *text = NULL;
	struct kr_err err = { 0 };
	struct oci_spec *s = NULL;
	size_t len;

	snprintf(path, sizeof(path), "%s/config.json", dir);
	unlink(path);
	REQUIRE(runc_spec(dir, rootless) == 0);
	REQUIRE(kr_read_file(path, OCI_SPEC_MAX_BYTES, &text, &len, &err) == 0);
	unlink(path);
	CHECKF(spec_parse(text, len, &s, &err) == 0, "%s", err.msg);
	free(text);
	if (!s)
		return;
	CHECK(s->has_process && s->process.n_args == 1);
	CHECK_STREQ(s->process.args[0], "sh");
	CHECK(s->process.caps.bounding == (CAP(CAP_AUDIT_WRITE) | CAP(CAP_KILL) |
					   CAP(CAP_NET_BIND_SERVICE)));
	CHECK(s->process.rlimits[0].resource == RLIMIT_NOFILE);
	CHECK(s->n_mounts >= 6);
	CHECK_STREQ(s->mounts[0].destination, "/proc");
	CHECK(spec_has_namespace(s, CLONE_NEWPID));
	CHECK(spec_has_namespace(s, CLONE_NEWUSER) == rootless);
	if (rootless)
		CHECK(s->n_uid_mappings == 1 && s->n_gid_mappings == 1);
	CHECK(s->n_masked_paths > 0 && s->n_readonly_paths > 0);
	spec_free(s);
}

static void test_runc_spec_parses(void)
{
	char dir[] = "/tmp/kr-test-spec-XXXXXX";

	if (access("/usr/sbin/runc", X_OK) < 0)
		SKIP("/usr/sbin/runc not installed");
	REQUIRE(mkdtemp(dir));
	check_runc_config(dir, false);
	check_runc_config(dir, true);
	rmdir(dir);
}

int main(void)
{
	KR_TEST(test_full_top_and_process);
	KR_TEST(test_full_mounts);
	KR_TEST(test_full_linux);
	KR_TEST(test_full_resources);
	KR_TEST(test_full_seccomp);
	KR_TEST(test_minimal_defaults);
	KR_TEST(test_errors_name_the_field);
	KR_TEST(test_integer_edges);
	KR_TEST(test_json_limits);
	KR_TEST(test_count_caps);
	KR_TEST(test_mount_options);
	KR_TEST(test_parse_process);
	KR_TEST(test_parse_resources);
	KR_TEST(test_cap_names);
	KR_TEST(test_runc_spec_parses);
	return kr_test_done();
}
