/* Unit tests for shim/core/config.c: the config file parser, the setter
 * used by flags, loading precedence, the guest kernel/initramfs search and
 * the dump round trip. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kr/error.h"
#include "kr/util.h"
#include "../lib/kr_test.h"
#include "config.h"

static char tmp[64];

static void setup(void)
{
	snprintf(tmp, sizeof(tmp), "/tmp/kr-config-test.XXXXXX");
	if (!mkdtemp(tmp))
		abort();
}

static void write_file(const char *path, const char *text, size_t len)
{
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);

	if (fd < 0 || kr_write_full(fd, text, len) < 0)
		abort();
	close(fd);
}

static void mkpath(char *buf, size_t size, const char *rel)
{
	snprintf(buf, size, "%s/%s", tmp, rel);
}

/* Parse text over the defaults; returns the parser's result. */
static int parse(struct kr_config *cfg, const char *text, struct kr_err *err)
{
	kr_config_defaults(cfg);
	kr_err_clear(err);
	return kr_config_parse(cfg, text, "test.toml", err);
}

/* Field by field: bytes after a string's NUL may differ. */
static int cfg_diff(const struct kr_config *a, const struct kr_config *b)
{
#define S(f) if (strcmp(a->f, b->f)) { printf("#   %s: \"%s\" != \"%s\"\n", #f, a->f, b->f); return 1; }
#define U(f) if (a->f != b->f) { printf("#   %s: %u != %u\n", #f, a->f, b->f); return 1; }
	S(path) S(hypervisor) S(kernel) S(initrd) U(vcpus) U(memory_mib) S(log_level)
	U(boot_timeout_s) U(call_timeout_s) S(libvirt_uri)
	S(virtiofsd) S(state_root) S(kernel_params)
#undef S
#undef U
	return 0;
}

/* Expect text to be rejected with a message containing want. */
#define CHECK_REJECTS(text, want)                                            \
	do {                                                                 \
		struct kr_config _c;                                         \
		struct kr_err _e;                                            \
		CHECK(parse(&_c, (text), &_e) == -1);                        \
		CHECK(_e.code == KR_INVALID_ARGUMENT);                       \
		CHECK_CONTAINS(_e.msg, (want));                              \
	} while (0)

static void test_defaults(void)
{
	struct kr_config c;

	memset(&c, 0x55, sizeof(c));
	kr_config_defaults(&c);
	CHECK_STREQ(c.path, "");
	CHECK_STREQ(c.hypervisor, "auto");
	CHECK_STREQ(c.kernel, "");
	CHECK_STREQ(c.initrd, "");
	CHECK(c.vcpus == 1);
	CHECK(c.memory_mib == 512);
	CHECK_STREQ(c.log_level, "warn");
	CHECK(c.boot_timeout_s == 30);
	CHECK(c.call_timeout_s == 30);
	CHECK(c.boot_timeout_s == 30);
	CHECK_STREQ(c.libvirt_uri, "");
	CHECK_STREQ(c.virtiofsd, "/usr/lib/qemu/virtiofsd");
	CHECK_STREQ(c.state_root, "/run/kata-run");
	CHECK_STREQ(c.kernel_params, "");
}

static void test_parse_all_keys(void)
{
	struct kr_config c;
	struct kr_err e;
	const char *text =
		"# a comment\n"
		"\n"
		"hypervisor = \"libvirt\"\n"
		"kernel = \"/k/bzImage\"   # trailing comment\n"
		"initrd=\"/k/initrd\"\n"
		"\tvcpus\t=\t4\t\n"
		"memory_mib = 65536#no space before the comment\n"
		"log_level = \"debug\"\n"
		"boot_timeout_s = 600\n"
		"call_timeout_s = 1\n"
		"libvirt_uri = \"qemu:///system\"\n"
		"virtiofsd = \"/opt/virtiofsd\"\n"
		"state_root = \"/var/run/kr\"\n"
		"kernel_params = \"a=\\\"b c\\\" d\\\\e # not a comment\"\n"
		"   # indented comment";		/* no final newline */

	REQUIRE(parse(&c, text, &e) == 0);
	CHECK_STREQ(c.hypervisor, "libvirt");
	CHECK_STREQ(c.kernel, "/k/bzImage");
	CHECK_STREQ(c.initrd, "/k/initrd");
	CHECK(c.vcpus == 4);
	CHECK(c.memory_mib == 65536);
	CHECK_STREQ(c.log_level, "debug");
	CHECK(c.boot_timeout_s == 600);
	CHECK(c.call_timeout_s == 1);
	CHECK_STREQ(c.libvirt_uri, "qemu:///system");
	CHECK_STREQ(c.virtiofsd, "/opt/virtiofsd");
	CHECK_STREQ(c.state_root, "/var/run/kr");
	CHECK_STREQ(c.kernel_params, "a=\"b c\" d\\e # not a comment");
	CHECK_STREQ(c.path, "");	/* parse never sets path; load does */
}

static void test_parse_empty_and_crlf(void)
{
	struct kr_config c;
	struct kr_err e;

	CHECK(parse(&c, "", &e) == 0);
	CHECK(c.vcpus == 1);
	CHECK(parse(&c, "\n\n  \t\n# only comments\n", &e) == 0);
	REQUIRE(parse(&c, "vcpus = 3\r\nlog_level = \"info\"\r\n", &e) == 0);
	CHECK(c.vcpus == 3);
	CHECK_STREQ(c.log_level, "info");
	/* Empty strings where "" means "search" / "embed". */
	REQUIRE(parse(&c, "kernel = \"\"\ninitrd = \"\"\nlibvirt_uri = \"\"\nkernel_params = \"\"", &e) == 0);
	CHECK_STREQ(c.kernel, "");
}

static void test_parse_syntax_errors(void)
{
	CHECK_REJECTS("vcpus = 2\nbogus = 1\n", "test.toml:2: unknown key \"bogus\"");
	CHECK_REJECTS("bogus = 1\n", "known keys: hypervisor, kernel,");
	CHECK_REJECTS("Vcpus = 1\n", "unknown key \"Vcpus\"");
	CHECK_REJECTS("vcpus = 2\n\nvcpus = 3\n",
		      "test.toml:3: duplicate key \"vcpus\" (first set on line 1)");
	CHECK_REJECTS("kernel = \"/a\"\nkernel = \"/a\"\n", "duplicate key \"kernel\"");
	CHECK_REJECTS("vcpus 2\n", "test.toml:1: missing '=' after \"vcpus\"");
	CHECK_REJECTS("vcpus\n", "missing '=' after \"vcpus\"");
	CHECK_REJECTS("vcpus =\n", "vcpus: missing value after '='");
	CHECK_REJECTS("vcpus = # nothing\n", "missing value");
	CHECK_REJECTS("= 2\n", "expected a key name");
	CHECK_REJECTS("vc.pus = 2\n", "invalid character '.' in key name");
	CHECK_REJECTS("\"vcpus\" = 2\n", "expected a key name");
	CHECK_REJECTS("kernel = \"/a/b\n", "test.toml:1: unterminated string");
	CHECK_REJECTS("kernel = \"/a/b\\\"\n", "unterminated string");
	CHECK_REJECTS("kernel = \"/a\\n\"\n", "unsupported escape '\\n'");
	CHECK_REJECTS("kernel = \"/a\" junk\n", "kernel: unexpected text after the value: \"junk\"");
	CHECK_REJECTS("kernel = \"/a\"\"/b\"\n", "unexpected text after the value");
	CHECK_REJECTS("vcpus = 2 3\n", "vcpus: unexpected text after the value: \"3\"");
	CHECK_REJECTS("kernel = '/a'\n", "single-quoted strings are not supported");
	CHECK_REJECTS("[runtime]\n", "tables ([...]) are not supported");
	CHECK_REJECTS("kernel = /a/b\n", "kernel: a string must be in double quotes");
	CHECK_REJECTS("vcpus = \"2\"\n", "vcpus: an integer is written without quotes");
	CHECK_REJECTS("kernel_params = \"a\tb\"\n", "control character (0x09)");
}

static void test_parse_integers(void)
{
	struct kr_config c;
	struct kr_err e;

	CHECK_REJECTS("vcpus = 0\n", "test.toml:1: vcpus: 0 is out of range (1..64)");
	CHECK_REJECTS("vcpus = 65\n", "vcpus: 65 is out of range (1..64)");
	CHECK_REJECTS("memory_mib = 63\n", "memory_mib: 63 is out of range (64..65536)");
	CHECK_REJECTS("memory_mib = 65537\n", "out of range (64..65536)");
	CHECK_REJECTS("boot_timeout_s = 0\n", "boot_timeout_s: 0 is out of range (1..600)");
	CHECK_REJECTS("call_timeout_s = 601\n", "call_timeout_s: 601 is out of range (1..600)");
	CHECK_REJECTS("call_timeout_s = 0\n", "call_timeout_s: 0 is out of range");
	/* Would wrap to 1 in 32 bits; 2^64 + 1 would wrap in 64. */
	CHECK_REJECTS("vcpus = 4294967297\n", "vcpus: 4294967297 is out of range");
	CHECK_REJECTS("vcpus = 18446744073709551617\n", "out of range");
	CHECK_REJECTS("vcpus = -1\n", "vcpus: -1 is negative");
	CHECK_REJECTS("vcpus = +1\n", "vcpus: \"+1\" is not a whole number");
	CHECK_REJECTS("vcpus = two\n", "\"two\" is not a whole number");
	CHECK_REJECTS("vcpus = 2x\n", "\"2x\" is not a whole number");
	CHECK_REJECTS("vcpus = 1.5\n", "not a whole number");
	CHECK_REJECTS("vcpus = 1_0\n", "not a whole number");
	CHECK_REJECTS("vcpus = 0x10\n", "not a whole number");
	CHECK_REJECTS("vcpus = true\n", "not a whole number");
	CHECK_REJECTS("vcpus = 010\n", "leading zero");
	/* The boundaries themselves are accepted. */
	REQUIRE(parse(&c, "vcpus = 64\nmemory_mib = 64\n", &e) == 0);
	CHECK(c.vcpus == 64);
	CHECK(c.memory_mib == 64);
}

static void test_parse_strings(void)
{
	char text[2200];
	struct kr_config c;
	struct kr_err e;

	CHECK_REJECTS("hypervisor = \"xen\"\n",
		      "hypervisor: \"xen\" is not one of auto, libvirt, kvm");
	CHECK_REJECTS("hypervisor = \"\"\n", "is not one of");
	CHECK_REJECTS("hypervisor = \"Libvirt\"\n", "is not one of");
	CHECK_REJECTS("log_level = \"verbose\"\n",
		      "log_level: \"verbose\" is not one of error, warn, info, debug");
	CHECK_REJECTS("kernel = \"build/bzImage\"\n",
		      "test.toml:1: kernel: \"build/bzImage\" is not an absolute path");
	CHECK_REJECTS("initrd = \"./initrd\"\n", "initrd: \"./initrd\" is not an absolute path");
	CHECK_REJECTS("virtiofsd = \"virtiofsd\"\n", "virtiofsd: \"virtiofsd\" is not an absolute path");
	CHECK_REJECTS("state_root = \"run\"\n", "state_root: \"run\" is not an absolute path");
	CHECK_REJECTS("virtiofsd = \"\"\n", "virtiofsd: \"\" is not an absolute path");
	CHECK_REJECTS("state_root = \"\"\n", "not an absolute path");

	/* kernel_params holds 1023 bytes: 1023 fit, 1024 are an error. */
	snprintf(text, sizeof(text), "kernel_params = \"%01023d\"\n", 0);
	REQUIRE(parse(&c, text, &e) == 0);
	CHECK(strlen(c.kernel_params) == 1023);
	snprintf(text, sizeof(text), "kernel_params = \"%01024d\"\n", 0);
	CHECK_REJECTS(text, "kernel_params: value is 1024 bytes long, at most 1023 fit");
	/* The limit counts decoded bytes: 1023 escaped quotes fit. */
	{
		char *t = malloc(4096);
		size_t n = (size_t)sprintf(t, "kernel_params = \"");

		for (int i = 0; i < 1023; i++)
			n += (size_t)sprintf(t + n, "\\\"");
		sprintf(t + n, "\"\n");
		CHECK(parse(&c, t, &e) == 0);
		CHECK(strlen(c.kernel_params) == 1023 && c.kernel_params[1022] == '"');
		free(t);
	}
	snprintf(text, sizeof(text), "libvirt_uri = \"%0256d\"\n", 0);
	CHECK_REJECTS(text, "libvirt_uri: value is 256 bytes long, at most 255 fit");
}

/* A rejected file or value leaves the configuration as it was. */
static void test_error_leaves_config(void)
{
	struct kr_config c, before;
	struct kr_err e;

	kr_config_defaults(&c);
	c.vcpus = 8;
	before = c;
	CHECK(kr_config_parse(&c, "vcpus = 2\nmemory_mib = 1024\nbogus = 1\n", "f", &e) == -1);
	CHECK(memcmp(&c, &before, sizeof(c)) == 0);
	CHECK(kr_config_set(&c, "vcpus", "0", &e) == -1);
	CHECK(kr_config_set(&c, "hypervisor", "xen", &e) == -1);
	CHECK(kr_config_set(&c, "kernel", "rel", &e) == -1);
	CHECK(memcmp(&c, &before, sizeof(c)) == 0);
	/* Error pointer may be NULL. */
	CHECK(kr_config_parse(&c, "bogus = 1", "f", NULL) == -1);
	CHECK(kr_config_set(&c, "bogus", "1", NULL) == -1);
}

static void test_set(void)
{
	struct kr_config c;
	struct kr_err e = { 0 };

	kr_config_defaults(&c);
	CHECK(kr_config_set(&c, "hypervisor", "kvm", &e) == 0);
	CHECK_STREQ(c.hypervisor, "kvm");
	CHECK(kr_config_set(&c, "log_level", "info", &e) == 0);
	CHECK_STREQ(c.log_level, "info");
	CHECK(kr_config_set(&c, "memory_mib", "2048", &e) == 0);
	CHECK(c.memory_mib == 2048);
	/* Flags pass values without TOML quoting. */
	CHECK(kr_config_set(&c, "kernel_params", "a \"b\" \\", &e) == 0);
	CHECK_STREQ(c.kernel_params, "a \"b\" \\");
	CHECK(kr_config_set(&c, "nope", "1", &e) == -1);
	CHECK(e.code == KR_INVALID_ARGUMENT);
	CHECK_CONTAINS(e.msg, "unknown key \"nope\"");
	CHECK(kr_config_set(&c, "log_level", "warning", &e) == -1);
	CHECK_CONTAINS(e.msg, "log_level: \"warning\" is not one of");
	CHECK(kr_config_set(&c, "vcpus", "", &e) == -1);
	CHECK_CONTAINS(e.msg, "vcpus: empty value");
	CHECK(kr_config_set(&c, "kernel_params", "a\nb", &e) == -1);
	CHECK_CONTAINS(e.msg, "control character (0x0a)");
	CHECK(kr_config_set(&c, "path", "/x", &e) == -1);	/* not a key */
}

/* Dump to a file and read it back. */
static int dump_and_parse(const struct kr_config *in, struct kr_config *out,
			  char *text, size_t size, struct kr_err *err)
{
	char p[128];
	int fd;
	ssize_t n;

	mkpath(p, sizeof(p), "dump.toml");
	fd = open(p, O_CREAT | O_TRUNC | O_RDWR, 0644);
	if (fd < 0)
		return -1;
	kr_config_dump(in, fd);
	n = pread(fd, text, size - 1, 0);
	close(fd);
	if (n < 0)
		return -1;
	text[n] = '\0';
	kr_config_defaults(out);
	out->vcpus = 33;	/* the dump must set every key */
	return kr_config_parse(out, text, p, err);
}

static void test_dump_round_trip(void)
{
	static char text[16384];
	struct kr_config in, out;
	struct kr_err e;

	kr_config_defaults(&in);
	REQUIRE(dump_and_parse(&in, &out, text, sizeof(text), &e) == 0);
	CHECK(cfg_diff(&in, &out) == 0);
	CHECK_CONTAINS(text, "# kata-run configuration");
	CHECK_CONTAINS(text, "\nvcpus = 1\n");
	CHECK_CONTAINS(text, "\nvirtiofsd = \"/usr/lib/qemu/virtiofsd\"\n");
	CHECK_CONTAINS(text, "built-in defaults");

	/* Every key changed, with characters that need escaping. */
	REQUIRE(parse(&in,
		"hypervisor = \"kvm\"\nkernel = \"/a b/#bz\\\"Image\"\ninitrd = \"/i\\\\n\"\n"
		"vcpus = 64\nmemory_mib = 64\nlog_level = \"error\"\nboot_timeout_s = 2\n"
		"call_timeout_s = 3\nlibvirt_uri = \"qemu:///system\"\n"
		"virtiofsd = \"/v\"\nstate_root = \"/s\"\nkernel_params = \"x=\\\"1 2\\\" # \\\\\"\n",
		&e) == 0);
	snprintf(in.path, sizeof(in.path), "/etc/x\nvcpus = 9");	/* shown in a comment */
	REQUIRE(dump_and_parse(&in, &out, text, sizeof(text), &e) == 0);
	CHECK_STREQ(out.path, "");
	out.path[0] = in.path[0] = '\0';
	CHECKF(cfg_diff(&in, &out) == 0, "dump:\n%s", text);
	CHECK_STREQ(out.kernel, "/a b/#bz\"Image");
	CHECK_STREQ(out.initrd, "/i\\n");
	CHECK_STREQ(out.kernel_params, "x=\"1 2\" # \\");
	CHECK(out.vcpus == 64);
	CHECK_CONTAINS(text, "/etc/x?vcpus = 9");
}

/* ---- loading ------------------------------------------------------------ */

static void test_load_precedence(void)
{
	char a[128], b[128];
	struct kr_config c;
	struct kr_err e = { 0 };

	mkpath(a, sizeof(a), "a.toml");
	mkpath(b, sizeof(b), "b.toml");
	write_file(a, "vcpus = 2\n", 10);
	write_file(b, "vcpus = 3\nmemory_mib = 1024\n", 28);

	unsetenv("KATA_RUN_CONFIG");
	REQUIRE(kr_config_load(&c, a, &e) == 0);
	CHECK(c.vcpus == 2);
	CHECK(c.memory_mib == 512);	/* defaults under the file */
	CHECK_STREQ(c.path, a);

	/* --config beats the environment. */
	setenv("KATA_RUN_CONFIG", b, 1);
	REQUIRE(kr_config_load(&c, a, &e) == 0);
	CHECK(c.vcpus == 2);
	CHECK(c.memory_mib == 512);
	CHECK_STREQ(c.path, a);

	/* The environment when there is no --config. */
	REQUIRE(kr_config_load(&c, NULL, &e) == 0);
	CHECK(c.vcpus == 3);
	CHECK(c.memory_mib == 1024);
	CHECK_STREQ(c.path, b);

	/* Loading starts from the defaults, whatever cfg held. */
	c.boot_timeout_s = 99;
	REQUIRE(kr_config_load(&c, a, &e) == 0);
	CHECK(c.boot_timeout_s == 30);
	unsetenv("KATA_RUN_CONFIG");
}

static void test_load_missing(void)
{
	char p[128];
	struct kr_config c;
	struct kr_err e = { 0 };

	mkpath(p, sizeof(p), "nope.toml");
	unsetenv("KATA_RUN_CONFIG");
	CHECK(kr_config_load(&c, p, &e) == -1);
	CHECK(e.code == KR_NOT_FOUND);
	CHECK_CONTAINS(e.msg, "config file named by --config");
	CHECK_CONTAINS(e.msg, p);
	CHECK_CONTAINS(e.msg, "No such file or directory");

	kr_err_clear(&e);
	setenv("KATA_RUN_CONFIG", p, 1);
	CHECK(kr_config_load(&c, NULL, &e) == -1);
	CHECK(e.code == KR_NOT_FOUND);
	CHECK_CONTAINS(e.msg, "config file named by $KATA_RUN_CONFIG");
	CHECK_CONTAINS(e.msg, p);

	/* A named directory is not a config file. */
	kr_err_clear(&e);
	CHECK(kr_config_load(&c, tmp, &e) == -1);
	CHECK_CONTAINS(e.msg, "Is a directory");

	/* Empty = unset: the default path, which is optional. */
	setenv("KATA_RUN_CONFIG", "", 1);
	if (access(KR_CONFIG_DEFAULT_PATH, F_OK) == 0) {
		unsetenv("KATA_RUN_CONFIG");
		SKIP("%s exists on this host", KR_CONFIG_DEFAULT_PATH);
	}
	CHECK(kr_config_load(&c, NULL, &e) == 0);
	CHECK_STREQ(c.path, "");
	CHECK(c.vcpus == 1);
	unsetenv("KATA_RUN_CONFIG");
	CHECK(kr_config_load(&c, NULL, &e) == 0);
	CHECK_STREQ(c.path, "");
}

static void test_load_bad_files(void)
{
	char p[128];
	struct kr_config c;
	struct kr_err e = { 0 };
	char *big;

	unsetenv("KATA_RUN_CONFIG");
	mkpath(p, sizeof(p), "bad.toml");
	write_file(p, "# ok\nvcpus = 1\nmemory_mib = -5\n", 31);
	CHECK(kr_config_load(&c, p, &e) == -1);
	CHECK(e.code == KR_INVALID_ARGUMENT);
	CHECK(strncmp(e.msg, p, strlen(p)) == 0);
	CHECK_CONTAINS(e.msg, ":3: memory_mib: -5 is negative");

	write_file(p, "vcpus = 2\0vcpus = 3\n", 20);
	CHECK(kr_config_load(&c, p, &e) == -1);
	CHECK_CONTAINS(e.msg, "contains a NUL byte");

	/* 64 KiB of comments is fine (minus one byte: kr_read_file's cap);
	 * more is not. */
	big = malloc(70000);
	memset(big, '#', 70000);
	big[0] = '\n';
	write_file(p, big, 65535);
	CHECK(kr_config_load(&c, p, &e) == 0);
	write_file(p, big, 65537);
	CHECK(kr_config_load(&c, p, &e) == -1);
	CHECK(e.code == KR_INVALID_ARGUMENT);
	CHECK_CONTAINS(e.msg, "larger than 64 KiB");
	free(big);
}

/* The shipped example parses and is the defaults. */
static void test_example_file(void)
{
	struct kr_config c, d;
	struct kr_err e = { 0 };

	unsetenv("KATA_RUN_CONFIG");
	CHECKF(kr_config_load(&c, "examples/kata-run.toml", &e) == 0, "%s", e.msg);
	kr_config_defaults(&d);
	CHECK_STREQ(c.path, "examples/kata-run.toml");
	c.path[0] = '\0';
	CHECK(cfg_diff(&c, &d) == 0);
}

/* ---- guest kernel and initramfs ------------------------------------------ */

static void touch(const char *dir, const char *name)
{
	char p[256];

	kr_mkdir_p(dir, 0755, NULL);
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	write_file(p, "x", 1);
}

static void test_find_guest_search(void)
{
	char exe[128], share[160], p[512];
	struct kr_config c;
	struct kr_err e = { 0 };

	mkpath(exe, sizeof(exe), "g1/prefix/bin");
	mkpath(share, sizeof(share), "g1/prefix/share/kata-run");
	kr_mkdir_p(exe, 0755, NULL);

	/* Only in <exe>/../share/kata-run. */
	touch(share, KR_KERNEL_NAME);
	touch(share, KR_INITRD_NAME);
	kr_config_defaults(&c);
	REQUIRE(kr_config_find_guest(&c, exe, &e) == 0);
	snprintf(p, sizeof(p), "%s/../share/kata-run/%s", exe, KR_KERNEL_NAME);
	CHECK_STREQ(c.kernel, p);
	snprintf(p, sizeof(p), "%s/../share/kata-run/%s", exe, KR_INITRD_NAME);
	CHECK_STREQ(c.initrd, p);

	/* The build tree (exe_dir itself) comes first. */
	touch(exe, KR_KERNEL_NAME);
	touch(exe, KR_INITRD_NAME);
	kr_config_defaults(&c);
	REQUIRE(kr_config_find_guest(&c, exe, &e) == 0);
	snprintf(p, sizeof(p), "%s/%s", exe, KR_KERNEL_NAME);
	CHECK_STREQ(c.kernel, p);
	snprintf(p, sizeof(p), "%s/%s", exe, KR_INITRD_NAME);
	CHECK_STREQ(c.initrd, p);

	/* A directory of that name is not a kernel: the next place wins. */
	snprintf(p, sizeof(p), "%s/%s", exe, KR_KERNEL_NAME);
	unlink(p);
	mkdir(p, 0755);
	kr_config_defaults(&c);
	REQUIRE(kr_config_find_guest(&c, exe, &e) == 0);
	CHECK_CONTAINS(c.kernel, "/share/kata-run/" KR_KERNEL_NAME);
	CHECK_CONTAINS(c.initrd, "/bin/" KR_INITRD_NAME);

	/* Paths that are set are kept, not searched. */
	kr_config_defaults(&c);
	snprintf(c.kernel, sizeof(c.kernel), "%s/%s", share, KR_KERNEL_NAME);
	snprintf(c.initrd, sizeof(c.initrd), "%s/%s", share, KR_INITRD_NAME);
	REQUIRE(kr_config_find_guest(&c, exe, &e) == 0);
	CHECK(strstr(c.kernel, "/bin/") == NULL);
	CHECK_CONTAINS(c.initrd, "/share/kata-run/");
}

static void test_find_guest_missing(void)
{
	char exe[128], p[512];
	struct kr_config c;
	struct kr_err e = { 0 };

	if (access("/usr/share/kata-run/" KR_KERNEL_NAME, F_OK) == 0 ||
	    access("/usr/share/kata-run/" KR_INITRD_NAME, F_OK) == 0)
		SKIP("/usr/share/kata-run has a guest kernel or initramfs");
	mkpath(exe, sizeof(exe), "g2/bin");
	kr_mkdir_p(exe, 0755, NULL);

	kr_config_defaults(&c);
	CHECK(kr_config_find_guest(&c, exe, &e) == -1);
	CHECK(e.code == KR_NOT_FOUND);
	/* Every place looked at, why, and the fix, for both files. */
	snprintf(p, sizeof(p), "looked at %s/%s (No such file or directory), %s/../share/kata-run/%s",
		 exe, KR_KERNEL_NAME, exe, KR_KERNEL_NAME);
	CHECK_CONTAINS(e.msg, p);
	CHECK_CONTAINS(e.msg, "/usr/share/kata-run/" KR_KERNEL_NAME);
	CHECK_CONTAINS(e.msg, "guest kernel " KR_KERNEL_NAME " not found");
	CHECK_CONTAINS(e.msg, "fix: make guest-kernel, or set kernel = \"/path/to/bzImage\" in "
			      KR_CONFIG_DEFAULT_PATH);
	CHECK_CONTAINS(e.msg, "guest initramfs " KR_INITRD_NAME " not found");
	CHECK_CONTAINS(e.msg, "fix: make initramfs, or set initrd =");
	CHECK_CONTAINS(e.msg, "/usr/share/kata-run/" KR_INITRD_NAME);
	CHECK_STREQ(c.kernel, "");

	/* Only the initramfs missing: the kernel is filled in, the error
	 * names only the initramfs. */
	touch(exe, KR_KERNEL_NAME);
	kr_config_defaults(&c);
	CHECK(kr_config_find_guest(&c, exe, &e) == -1);
	CHECK_CONTAINS(c.kernel, "/bin/" KR_KERNEL_NAME);
	CHECK(strstr(e.msg, "guest kernel") == NULL);
	CHECK(strncmp(e.msg, "guest initramfs", 15) == 0);

	/* exe_dir NULL: only /usr/share/kata-run. */
	kr_config_defaults(&c);
	CHECK(kr_config_find_guest(&c, NULL, &e) == -1);
	CHECK_CONTAINS(e.msg, "looked at /usr/share/kata-run/" KR_KERNEL_NAME
			      " (No such file or directory); fix");
}

static void test_find_guest_set_paths(void)
{
	char p[128];
	struct kr_config c;
	struct kr_err e = { 0 };

	kr_config_defaults(&c);
	snprintf(c.path, sizeof(c.path), "/etc/my.toml");
	mkpath(c.kernel, sizeof(c.kernel), "no-such-kernel");
	mkpath(c.initrd, sizeof(c.initrd), "");	/* a directory */
	CHECK(kr_config_find_guest(&c, NULL, &e) == -1);
	CHECK(e.code == KR_NOT_FOUND);
	mkpath(p, sizeof(p), "no-such-kernel");
	CHECK_CONTAINS(e.msg, "guest kernel ");
	CHECK_CONTAINS(e.msg, p);
	CHECK_CONTAINS(e.msg, "(kernel = in /etc/my.toml): No such file or directory");
	CHECK_CONTAINS(e.msg, "(initrd = in /etc/my.toml): not a regular file");
	/* A set path is never replaced by a search result. */
	CHECK_STREQ(c.kernel, p);
}

int main(void)
{
	setup();
	KR_TEST(test_defaults);
	KR_TEST(test_parse_all_keys);
	KR_TEST(test_parse_empty_and_crlf);
	KR_TEST(test_parse_syntax_errors);
	KR_TEST(test_parse_integers);
	KR_TEST(test_parse_strings);
	KR_TEST(test_error_leaves_config);
	KR_TEST(test_set);
	KR_TEST(test_dump_round_trip);
	KR_TEST(test_load_precedence);
	KR_TEST(test_load_missing);
	KR_TEST(test_load_bad_files);
	KR_TEST(test_example_file);
	KR_TEST(test_find_guest_search);
	KR_TEST(test_find_guest_missing);
	KR_TEST(test_find_guest_set_paths);
	kr_rm_rf(tmp, NULL);
	return kr_test_done();
}
