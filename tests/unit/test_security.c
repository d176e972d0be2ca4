/* Unit tests for agent/caps.c, user.c and seccomp.c.
 *
 * Every confinement is applied in a forked child so that the test process
 * keeps its identity, capabilities and syscalls; the child reports a failed
 * check on stdout and exits non-zero.  Needs root (CAP_SETPCAP, setuid). */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kr/error.h"
#include "kr/util.h"
#include "../lib/kr_test.h"
#include "security.h"
#include "spec.h"

#define CAP(c) (1ull << (c))

/* Inside a child: report and leave.  _exit, so that the parent's stdio
 * buffers and atexit handlers are not run twice. */
#define CHILD_CHECK(cond)                                                     \
	do {                                                                  \
		if (!(cond)) {                                                \
			printf("#   child %s:%d: CHECK failed: %s (errno %d)\n", \
			       __FILE__, __LINE__, #cond, errno);             \
			fflush(stdout);                                       \
			_exit(1);                                             \
		}                                                             \
	} while (0)

#define CHILD_OK(call, err)                                                   \
	do {                                                                  \
		if ((call) < 0) {                                             \
			printf("#   child %s:%d: %s: %s\n", __FILE__, __LINE__, \
			       #call, (err)->msg);                            \
			fflush(stdout);                                       \
			_exit(1);                                             \
		}                                                             \
	} while (0)

/* Run fn in a child; returns its wait status. */
static int in_child(void (*fn)(const void *), const void *arg)
{
	int status;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		fn(arg);
		fflush(stdout);
		_exit(0);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return status;
}

#define CHILD_PASSED(st) (WIFEXITED(st) && WEXITSTATUS(st) == 0)

static bool is_root(void)
{
	return geteuid() == 0;
}

static struct oci_spec *parse_q(const char *sq)
{
	char *json = kr_xstrdup(sq);
	struct oci_spec *spec = NULL;
	struct kr_err err = { 0 };

	for (char *p = json; *p; p++)
		if (*p == '\'')
			*p = '"';
	if (spec_parse(json, strlen(json), &spec, &err) < 0) {
		printf("#   parse: %s\n", err.msg);
		spec = NULL;
	}
	free(json);
	return spec;
}

/* "CapBnd:" etc. from /proc/self/status. */
static uint64_t status_caps(const char *field)
{
	char line[256];
	size_t fl = strlen(field);
	uint64_t v = UINT64_MAX;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return v;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, field, fl) && line[fl] == ':')
			v = strtoull(line + fl + 1, NULL, 16);
	fclose(f);
	return v;
}

/* ---- seccomp -------------------------------------------------------------- */

#define SECCOMP_SPEC(rules)                                                   \
	"{ 'linux': { 'seccomp': { 'defaultAction': 'SCMP_ACT_ALLOW',"        \
	" 'architectures': ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],"\
	" 'syscalls': [ " rules " ] } } }"

static void child_mkdir_fails(const void *arg)
{
	const struct oci_spec *s = arg;
	int want = s->seccomp->rules[0].has_errno_ret ?
		   (int)s->seccomp->rules[0].errno_ret : EPERM;
	struct kr_err err = { 0 };

	CHILD_OK(seccomp_apply(s->seccomp, &err), &err);
	/* The launch code, not the filter, decides about no_new_privs. */
	CHILD_CHECK(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 0);
	errno = 0;
	CHILD_CHECK(mkdir("/tmp/kr-test-seccomp-never", 0755) < 0 && errno == want);
	errno = 0;
	CHILD_CHECK(syscall(SYS_mkdirat, AT_FDCWD, "/tmp/kr-test-seccomp-never",
			    0755) < 0 && errno == want);
	CHILD_CHECK(getpid() > 0);	/* everything else still allowed */
}

static void test_seccomp_errno(void)
{
	struct oci_spec *s;
	struct kr_err err = { 0 };

	if (!is_root())
		SKIP("needs root");
	s = parse_q(SECCOMP_SPEC("{ 'names': ['mkdir', 'mkdirat'],"
				 " 'action': 'SCMP_ACT_ERRNO' }"));
	REQUIRE(s);
	CHECKF(seccomp_check(s->seccomp, &err) == 0, "%s", err.msg);
	CHECK(CHILD_PASSED(in_child(child_mkdir_fails, s)));
	spec_free(s);

	s = parse_q(SECCOMP_SPEC("{ 'names': ['mkdir', 'mkdirat'],"
				 " 'action': 'SCMP_ACT_ERRNO', 'errnoRet': 38 }"));
	REQUIRE(s);
	CHECK(s->seccomp->rules[0].errno_ret == ENOSYS);
	CHECK(CHILD_PASSED(in_child(child_mkdir_fails, s)));
	spec_free(s);
}

static void child_getppid(const void *arg)
{
	const struct oci_spec *s = arg;
	struct kr_err err = { 0 };

	CHILD_OK(seccomp_apply(s->seccomp, &err), &err);
	syscall(SYS_getppid);
	printf("#   child survived getppid\n");
	fflush(stdout);
	_exit(3);
}

static void test_seccomp_kill(void)
{
	static const char *const actions[] = {
		"SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD",
		"SCMP_ACT_TRAP",
	};
	char json[512];

	if (!is_root())
		SKIP("needs root");
	for (size_t i = 0; i < KR_ARRAY_SIZE(actions); i++) {
		snprintf(json, sizeof(json),
			 SECCOMP_SPEC("{ 'names': ['getppid'], 'action': '%s' }"),
			 actions[i]);
		struct oci_spec *s = parse_q(json);
		REQUIRE(s);
		int st = in_child(child_getppid, s);
		CHECKF(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS,
		       "%s: status %#x", actions[i], st);
		spec_free(s);
	}
}

static void test_seccomp_skips_unknown_syscalls(void)
{
	struct kr_err err = { 0 };
	struct oci_spec *s;

	if (!is_root())
		SKIP("needs root");
	/* Unknown names are skipped; a rule equal to the default action is
	 * dropped (libseccomp would refuse it). */
	s = parse_q(SECCOMP_SPEC(
		"{ 'names': ['no_such_syscall_kr', 'mkdir', 'mkdirat'],"
		"  'action': 'SCMP_ACT_ERRNO' },"
		"{ 'names': ['read', 'write'], 'action': 'SCMP_ACT_ALLOW' }"));
	REQUIRE(s);
	CHECKF(seccomp_check(s->seccomp, &err) == 0, "%s", err.msg);
	CHECK(CHILD_PASSED(in_child(child_mkdir_fails, s)));
	spec_free(s);
}

static void child_personality(const void *arg)
{
	const struct oci_spec *s = arg;
	struct kr_err err = { 0 };

	CHILD_OK(seccomp_apply(s->seccomp, &err), &err);
	/* 0xffffffff only queries the persona: must pass the filter. */
	CHILD_CHECK(syscall(SYS_personality, 0xffffffffUL) >= 0);
	errno = 0;
	CHILD_CHECK(syscall(SYS_personality, 0xdeadUL) < 0 && errno == EPERM);
	errno = 0;
	CHILD_CHECK(syscall(SYS_personality, 0xbeefUL) < 0 && errno == EPERM);
	errno = 0;
	CHILD_CHECK(syscall(SYS_personality, 0x1e00UL) < 0 && errno == EPERM);
}

static void test_seccomp_args(void)
{
	struct kr_err err = { 0 };
	struct oci_spec *s;

	if (!is_root())
		SKIP("needs root");
	/* Two conditions on the same argument: runc makes one rule each
	 * (either matches); MASKED_EQ compares arg & value with valueTwo. */
	s = parse_q(SECCOMP_SPEC(
		"{ 'names': ['personality'], 'action': 'SCMP_ACT_ERRNO',"
		"  'args': [ { 'index': 0, 'value': 57005, 'op': 'SCMP_CMP_EQ' },"
		"            { 'index': 0, 'value': 48879, 'op': 'SCMP_CMP_EQ' } ] },"
		"{ 'names': ['personality'], 'action': 'SCMP_ACT_ERRNO',"
		"  'args': [ { 'index': 0, 'value': 65280, 'valueTwo': 7680,"
		"              'op': 'SCMP_CMP_MASKED_EQ' } ] }"));
	REQUIRE(s);
	CHECKF(seccomp_check(s->seccomp, &err) == 0, "%s", err.msg);
	CHECK(CHILD_PASSED(in_child(child_personality, s)));
	spec_free(s);
}

static void test_seccomp_check_errors(void)
{
	struct kr_err err = { 0 };
	struct oci_spec *s;

	s = parse_q("{ 'linux': { 'seccomp': { 'defaultAction': 'SCMP_ACT_ERRNO',"
		    " 'architectures': ['SCMP_ARCH_FOO'] } } }");
	REQUIRE(s);
	CHECK(seccomp_check(s->seccomp, &err) < 0);
	CHECK_STREQ(err.msg, "seccomp: unknown architecture \"SCMP_ARCH_FOO\"");
	spec_free(s);

	/* Every action and operator builds. */
	s = parse_q("{ 'linux': { 'seccomp': { 'defaultAction': 'SCMP_ACT_ERRNO',"
		    " 'defaultErrnoRet': 1, 'architectures': ['SCMP_ARCH_AARCH64'],"
		    " 'syscalls': ["
		    " { 'names': ['read'], 'action': 'SCMP_ACT_ALLOW' },"
		    " { 'names': ['write'], 'action': 'SCMP_ACT_LOG' },"
		    " { 'names': ['ptrace'], 'action': 'SCMP_ACT_TRACE' },"
		    " { 'names': ['kexec_load'], 'action': 'SCMP_ACT_KILL' },"
		    " { 'names': ['reboot'], 'action': 'SCMP_ACT_KILL_PROCESS' },"
		    " { 'names': ['swapon'], 'action': 'SCMP_ACT_TRAP' },"
		    " { 'names': ['open'], 'action': 'SCMP_ACT_ERRNO', 'errnoRet': 1 },"
		    " { 'names': ['openat'], 'action': 'SCMP_ACT_ALLOW', 'args': ["
		    "   { 'index': 2, 'value': 1, 'op': 'SCMP_CMP_NE' },"
		    "   { 'index': 3, 'value': 1, 'op': 'SCMP_CMP_LT' },"
		    "   { 'index': 4, 'value': 1, 'op': 'SCMP_CMP_LE' },"
		    "   { 'index': 5, 'value': 1, 'op': 'SCMP_CMP_GE' },"
		    "   { 'index': 1, 'value': 1, 'op': 'SCMP_CMP_GT' } ] } ] } } }");
	REQUIRE(s);
	CHECKF(seccomp_check(s->seccomp, &err) == 0, "%s", err.msg);
	spec_free(s);
}

/* ---- capabilities --------------------------------------------------------- */

static void child_bounding(const void *arg)
{
	struct oci_caps caps = { .bounding = CAP(CAP_KILL) | CAP(CAP_CHOWN) };
	struct kr_err err = { 0 };

	CHILD_OK(caps_apply_bounding(&caps, &err), &err);
	CHILD_CHECK(status_caps("CapBnd") == caps.bounding);
	/* Again: already-dropped caps are skipped, so this is a no-op. */
	CHILD_OK(caps_apply_bounding(&caps, &err), &err);
	CHILD_CHECK(status_caps("CapBnd") == caps.bounding);
}

static void test_caps_bounding(void)
{
	if (!is_root())
		SKIP("needs root");
	CHECK(CHILD_PASSED(in_child(child_bounding, NULL)));
}

static void child_bounding_eperm(const void *arg)
{
	/* Without CAP_SETPCAP nothing can leave the bounding set. */
	struct oci_caps keep = { .permitted = CAP(CAP_KILL),
				 .effective = CAP(CAP_KILL) };
	struct oci_caps none = { 0 };
	struct kr_err err = { 0 };

	CHILD_OK(caps_apply(&keep, &err), &err);
	CHILD_CHECK(caps_apply_bounding(&none, &err) < 0);
	CHILD_CHECK(strstr(err.msg, "from the bounding set: Operation not permitted"));
	CHILD_CHECK(err.errnum == EPERM);
}

static void test_caps_bounding_error(void)
{
	if (!is_root())
		SKIP("needs root");
	CHECK(CHILD_PASSED(in_child(child_bounding_eperm, NULL)));
}

static void child_capset(const void *arg)
{
	struct oci_caps caps = {
		.effective = CAP(CAP_CHOWN),
		.permitted = CAP(CAP_CHOWN) | CAP(CAP_KILL),
		.inheritable = CAP(CAP_KILL),
		.ambient = CAP(CAP_KILL) | CAP(CAP_SYS_ADMIN),	/* SYS_ADMIN: skipped */
	};
	struct kr_err err = { 0 };

	CHILD_OK(caps_apply(&caps, &err), &err);
	CHILD_CHECK(status_caps("CapEff") == CAP(CAP_CHOWN));
	CHILD_CHECK(status_caps("CapPrm") == (CAP(CAP_CHOWN) | CAP(CAP_KILL)));
	CHILD_CHECK(status_caps("CapInh") == CAP(CAP_KILL));
	CHILD_CHECK(status_caps("CapAmb") == CAP(CAP_KILL));
	/* Permitted only shrinks. */
	caps.permitted |= CAP(CAP_SYS_ADMIN);
	CHILD_CHECK(caps_apply(&caps, &err) < 0 && err.errnum == EPERM);
	CHILD_CHECK(strstr(err.msg, "capset"));
}

static void test_caps_apply(void)
{
	if (!is_root())
		SKIP("needs root");
	CHECK(CHILD_PASSED(in_child(child_capset, NULL)));
}

/* ---- user and groups ------------------------------------------------------ */

static void child_user(const void *arg)
{
	gid_t extra = 2000, groups[8];
	struct oci_user user = {
		.uid = 1000, .gid = 1000,
		.additional_gids = &extra, .n_additional_gids = 1,
		.has_umask = true, .umask = 027,
	};
	struct oci_caps caps = {
		.effective = CAP(CAP_KILL),
		.permitted = CAP(CAP_KILL) | CAP(CAP_CHOWN),
	};
	struct kr_err err = { 0 };
	uid_t r, e, s;

	CHILD_OK(user_apply(&user, &err), &err);
	CHILD_CHECK(getresuid(&r, &e, &s) == 0 && r == 1000 && e == 1000 &&
		    s == 1000);
	CHILD_CHECK(getgid() == 1000 && getegid() == 1000);
	CHILD_CHECK(getgroups(8, groups) == 1 && groups[0] == 2000);
	CHILD_CHECK(umask(0) == 027);
	CHILD_CHECK(prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0) == 0);
	/* The uid change cleared the effective set but kept permitted. */
	CHILD_CHECK(status_caps("CapEff") == 0);
	CHILD_CHECK(status_caps("CapPrm") != 0);
	CHILD_OK(caps_apply(&caps, &err), &err);
	CHILD_CHECK(status_caps("CapPrm") == caps.permitted);
	CHILD_CHECK(status_caps("CapEff") == CAP(CAP_KILL));
}

static void test_user_apply(void)
{
	if (!is_root())
		SKIP("needs root");
	CHECK(CHILD_PASSED(in_child(child_user, NULL)));
}

static void child_user_no_groups(const void *arg)
{
	struct oci_user user = { .uid = 0, .gid = 0 };
	struct kr_err err = { 0 };
	gid_t one = 10;
	mode_t before;

	CHILD_CHECK(setgroups(1, &one) == 0);
	before = umask(022);
	(void)before;
	CHILD_OK(user_apply(&user, &err), &err);
	CHILD_CHECK(getgroups(0, NULL) == 0);	/* the agent's groups are gone */
	CHILD_CHECK(umask(0) == 022);	/* has_umask false: untouched */
	CHILD_CHECK(getuid() == 0);
}

static void test_user_no_groups(void)
{
	if (!is_root())
		SKIP("needs root");
	CHECK(CHILD_PASSED(in_child(child_user_no_groups, NULL)));
}

/* ---- rlimits -------------------------------------------------------------- */

static void child_rlimits(const void *arg)
{
	struct oci_rlimit rl[] = {
		{ .resource = RLIMIT_NOFILE, .soft = 100, .hard = 200 },
		{ .resource = RLIMIT_CORE, .soft = 0, .hard = RLIM_INFINITY },
	};
	struct oci_process p = { .rlimits = rl, .n_rlimits = 2 };
	struct kr_err err = { 0 };
	struct rlimit got;

	CHILD_OK(rlimits_apply(&p, &err), &err);
	CHILD_CHECK(getrlimit(RLIMIT_NOFILE, &got) == 0);
	CHILD_CHECK(got.rlim_cur == 100 && got.rlim_max == 200);
	CHILD_CHECK(getrlimit(RLIMIT_CORE, &got) == 0);
	CHILD_CHECK(got.rlim_cur == 0 && got.rlim_max == RLIM_INFINITY);

	/* Even root cannot go past fs.nr_open. */
	rl[0].soft = 100;
	rl[0].hard = RLIM_INFINITY;
	p.n_rlimits = 1;
	CHILD_CHECK(rlimits_apply(&p, &err) < 0);
	CHILD_CHECK(!strcmp(err.msg, "setrlimit RLIMIT_NOFILE: Operation not permitted"));
	/* soft > hard */
	rl[0].soft = 300;
	rl[0].hard = 200;
	CHILD_CHECK(rlimits_apply(&p, &err) < 0);
	CHILD_CHECK(!strcmp(err.msg, "setrlimit RLIMIT_NOFILE: Invalid argument"));
}

static void test_rlimits(void)
{
	CHECK(CHILD_PASSED(in_child(child_rlimits, NULL)));
}

/* The whole sequence the launch code runs, from a parsed spec. */
static void child_sequence(const void *arg)
{
	const struct oci_spec *s = arg;
	const struct oci_process *p = &s->process;
	struct kr_err err = { 0 };

	CHILD_OK(rlimits_apply(p, &err), &err);
	CHILD_OK(caps_apply_bounding(&p->caps, &err), &err);
	CHILD_OK(user_apply(&p->user, &err), &err);
	CHILD_OK(caps_apply(&p->caps, &err), &err);
	CHILD_CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0);
	CHILD_OK(seccomp_apply(s->seccomp, &err), &err);
	CHILD_CHECK(getuid() == 1000 && getgid() == 1000);
	CHILD_CHECK(status_caps("CapBnd") == p->caps.bounding);
	CHILD_CHECK(status_caps("CapEff") == p->caps.effective);
	CHILD_CHECK(status_caps("CapAmb") == p->caps.ambient);
	errno = 0;
	CHILD_CHECK(mkdir("/tmp/kr-test-never", 0700) < 0 && errno == EPERM);
}

static void test_full_sequence(void)
{
	struct oci_spec *s;

	if (!is_root())
		SKIP("needs root");
	s = parse_q("{ 'process': { 'args': ['x'],"
		    " 'user': { 'uid': 1000, 'gid': 1000, 'additionalGids': [2000] },"
		    " 'capabilities': {"
		    "  'bounding': ['CAP_KILL', 'CAP_NET_BIND_SERVICE'],"
		    "  'effective': ['CAP_KILL', 'CAP_NET_BIND_SERVICE'],"
		    "  'permitted': ['CAP_KILL', 'CAP_NET_BIND_SERVICE'],"
		    "  'inheritable': ['CAP_NET_BIND_SERVICE'],"
		    "  'ambient': ['CAP_NET_BIND_SERVICE'] },"
		    " 'rlimits': [ { 'type': 'RLIMIT_NOFILE', 'hard': 64, 'soft': 64 } ] },"
		    " 'linux': { 'seccomp': { 'defaultAction': 'SCMP_ACT_ALLOW',"
		    "  'syscalls': [ { 'names': ['mkdir', 'mkdirat'],"
		    "  'action': 'SCMP_ACT_ERRNO' } ] } } }");
	REQUIRE(s);
	CHECK(CHILD_PASSED(in_child(child_sequence, s)));
	spec_free(s);
}

int main(void)
{
	KR_TEST(test_seccomp_errno);
	KR_TEST(test_seccomp_kill);
	KR_TEST(test_seccomp_skips_unknown_syscalls);
	KR_TEST(test_seccomp_args);
	KR_TEST(test_seccomp_check_errors);
	KR_TEST(test_caps_bounding);
	KR_TEST(test_caps_bounding_error);
	KR_TEST(test_caps_apply);
	KR_TEST(test_user_apply);
	KR_TEST(test_user_no_groups);
	KR_TEST(test_rlimits);
	KR_TEST(test_full_sequence);
	return kr_test_done();
}
