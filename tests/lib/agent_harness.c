/* See agent_harness.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent_harness.h"
#include "kr/agent_client.h"
#include "kr/util.h"

const char *harness_extra_mounts = "";

static const char *agent_path(void)
{
	const char *p = getenv("KR_AGENT");

	return p ? p : "build/kata-agent";
}

int harness_start(struct harness *h)
{
	struct kr_err err = { 0 };
	pid_t pid;

	snprintf(h->dir, sizeof(h->dir), "/tmp/kr-itest-%d", (int)getpid());
	snprintf(h->sock, sizeof(h->sock), "%s/agent.sock", h->dir);
	snprintf(h->state, sizeof(h->state), "%s/state", h->dir);
	snprintf(h->prefix, sizeof(h->prefix), "kr-itest-%d", (int)getpid());
	if (kr_mkdir_p(h->state, 0700, &err) < 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		/* Private mounts: nothing the agent mounts can reach the host. */
		if (unshare(CLONE_NEWNS) < 0 ||
		    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
		    mount("tmpfs", h->state, "tmpfs", 0, "mode=0700") < 0) {
			perror("harness: private mount namespace");
			_exit(127);
		}
		char log[320], listen[320];
		snprintf(log, sizeof(log), "%s/agent.log", h->dir);
		snprintf(listen, sizeof(listen), "unix:%s", h->sock);
		execl(agent_path(), "kata-agent", "--listen", listen, "--state-dir",
		      h->state, "--cgroup-prefix", h->prefix, "--log-level", "debug",
		      "--log-file", log, (char *)NULL);
		perror("harness: exec agent");
		_exit(127);
	}
	h->agent_pid = pid;
	/* Wait until it accepts. */
	for (int i = 0; i < 500; i++) {
		struct stat st;

		if (stat(h->sock, &st) == 0)
			return 0;
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return -1;
		usleep(10000);
	}
	return -1;
}

void harness_stop(struct harness *h)
{
	struct agent_client *c;
	struct kr_err err = { 0 };
	int status;

	if (h->agent_pid <= 0)
		return;
	c = agent_client_connect(h->sock, 1000, &err);
	if (c) {
		KataRun__Agent__V1__DestroySandboxRequest req =
			KATA_RUN__AGENT__V1__DESTROY_SANDBOX_REQUEST__INIT;
		ProtobufCMessage *resp = NULL;

		if (agent_call(c, "DestroySandbox", &req.base,
			       &kata_run__agent__v1__empty__descriptor, &resp, 5000, &err) == 0)
			protobuf_c_message_free_unpacked(resp, NULL);
		agent_client_free(c);
	}
	for (int i = 0; i < 300; i++) {
		if (waitpid(h->agent_pid, &status, WNOHANG) == h->agent_pid) {
			h->agent_pid = 0;
			break;
		}
		usleep(10000);
	}
	if (h->agent_pid > 0) {
		char cmd[600];

		printf("# agent did not stop by itself: killed\n");
		kill(h->agent_pid, SIGKILL);
		waitpid(h->agent_pid, &status, 0);
		h->agent_pid = 0;
		/* A killed agent leaves its cgroup prefix: do not pollute the host. */
		snprintf(cmd, sizeof(cmd), "find /sys/fs/cgroup -maxdepth 6 -depth -type d "
			 "-path '*/%s*' -exec rmdir {} + 2>/dev/null", h->prefix);
		(void)!system(cmd);
	}
	if (getenv("KR_KEEP_LOGS")) {
		char cmd[512];

		snprintf(cmd, sizeof(cmd), "cat %s/agent.log", h->dir);
		(void)!system(cmd);
	}
	kr_rm_rf(h->dir, NULL);
}

static int write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f);
}

int harness_bundle(const char *dir, const char *args_json, bool terminal,
		   const char *process_extra, const char *linux_extra,
		   const char *top_extra)
{
	static const char *const applets[] = {
		"sh", "echo", "cat", "ls", "id", "env", "pwd", "hostname",
		"sleep", "true", "false", "kill", "ps", "wc", "head", "mkdir",
		"touch", "test", "md5sum", "dd", "yes", "stat", "grep",
	};
	char path[1024], root[512];
	char *json;
	const char *probe = getenv("KR_PROBE");
	struct kr_err err = { 0 };

	snprintf(root, sizeof(root), "%s/rootfs", dir);
	snprintf(path, sizeof(path), "%s/bin", root);
	if (kr_mkdir_p(path, 0755, &err) < 0)
		return -1;
	for (const char *const *d = (const char *const[]){ "proc", "sys", "dev", "tmp", "etc", NULL }; *d; d++) {
		snprintf(path, sizeof(path), "%s/%s", root, *d);
		mkdir(path, 0755);
	}
	snprintf(path, sizeof(path), "cp /bin/busybox %s/bin/busybox", root);
	if (system(path) != 0)
		return -1;
	for (size_t i = 0; i < KR_ARRAY_SIZE(applets); i++) {
		snprintf(path, sizeof(path), "%s/bin/%s", root, applets[i]);
		symlink("busybox", path);
	}
	if (probe && access(probe, X_OK) == 0) {
		char cmd[1024];

		snprintf(cmd, sizeof(cmd), "cp %s %s/bin/probe", probe, root);
		if (system(cmd) != 0)
			return -1;
	}
	snprintf(path, sizeof(path), "%s/etc/passwd", root);
	write_text(path, "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/tmp:/bin/sh\n");
	if (asprintf(&json,
		"{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"rootfs\"},%s"
		"\"hostname\":\"kr-test\","
		"\"process\":{\"terminal\":%s,\"user\":{\"uid\":0,\"gid\":0},\"args\":%s,"
		"\"env\":[\"PATH=/bin\",\"TERM=xterm\"],\"cwd\":\"/\",%s"
		"\"capabilities\":{\"bounding\":[\"CAP_KILL\",\"CAP_CHOWN\",\"CAP_SETUID\",\"CAP_SETGID\"],"
		"\"effective\":[\"CAP_KILL\",\"CAP_CHOWN\",\"CAP_SETUID\",\"CAP_SETGID\"],"
		"\"permitted\":[\"CAP_KILL\",\"CAP_CHOWN\",\"CAP_SETUID\",\"CAP_SETGID\"]},"
		"\"noNewPrivileges\":true},"
		"\"mounts\":[{\"destination\":\"/proc\",\"type\":\"proc\",\"source\":\"proc\"},"
		"{\"destination\":\"/dev\",\"type\":\"tmpfs\",\"source\":\"tmpfs\",\"options\":[\"nosuid\",\"strictatime\",\"mode=755\",\"size=65536k\"]},"
		"{\"destination\":\"/dev/pts\",\"type\":\"devpts\",\"source\":\"devpts\",\"options\":[\"nosuid\",\"noexec\",\"newinstance\",\"ptmxmode=0666\",\"mode=0620\"]},"
		"{\"destination\":\"/dev/shm\",\"type\":\"tmpfs\",\"source\":\"shm\",\"options\":[\"nosuid\",\"noexec\",\"nodev\",\"mode=1777\",\"size=65536k\"]}%s],"
		"\"linux\":{%s\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"ipc\"},{\"type\":\"uts\"},{\"type\":\"mount\"}],"
		"\"maskedPaths\":[\"/proc/kcore\",\"/proc/keys\"],\"readonlyPaths\":[\"/proc/sys\"]}}",
		top_extra ? top_extra : "", terminal ? "true" : "false", args_json,
		process_extra ? process_extra : "", harness_extra_mounts,
		linux_extra ? linux_extra : "") < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/config.json", dir);
	int rc = write_text(path, json);
	free(json);
	return rc;
}

int harness_count_mounts(const char *needle)
{
	char *text = NULL;
	int n = 0;

	if (kr_read_file("/proc/self/mountinfo", 1 << 22, &text, NULL, NULL) < 0)
		return -1;
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
		if (strstr(line, needle)) {
			printf("# leaked mount: %s\n", line);
			n++;
		}
	free(text);
	return n;
}

int harness_count_cgroups(const char *prefix)
{
	char pattern[512];
	glob_t g;
	int n = 0;

	/* v1 puts container cgroups under the agent's own cgroup, at any depth
	 * below the controller mounts: search a few levels. */
	for (int depth = 1; depth <= 4; depth++) {
		int o = snprintf(pattern, sizeof(pattern), "/sys/fs/cgroup");
		for (int i = 0; i < depth; i++)
			o += snprintf(pattern + o, sizeof(pattern) - (size_t)o, "/*");
		snprintf(pattern + o, sizeof(pattern) - (size_t)o, "/%s", prefix);
		if (glob(pattern, GLOB_ONLYDIR, NULL, &g) == 0) {
			for (size_t i = 0; i < g.gl_pathc; i++)
				printf("# leaked cgroup: %s\n", g.gl_pathv[i]);
			n += (int)g.gl_pathc;
			globfree(&g);
		}
	}
	return n;
}

int harness_count_children(pid_t parent)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d))) {
		char path[300], *stat = NULL;
		int pid = atoi(de->d_name), ppid = 0;

		if (pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		if (kr_read_file(path, 4096, &stat, NULL, NULL) < 0)
			continue;
		char *rp = strrchr(stat, ')');
		if (rp && sscanf(rp + 2, "%*c %d", &ppid) == 1 && ppid == parent) {
			printf("# leftover child process %d of %d\n", pid, (int)parent);
			n++;
		}
		free(stat);
	}
	closedir(d);
	return n;
}
