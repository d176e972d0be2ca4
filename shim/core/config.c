/* kata-run's configuration file: see config.h and docs/config.md.
 *
 * One table describes every key (name, type, where it lives in struct
 * kr_config, its range or choices, its documentation); the parser, the
 * command-line setter and the dump all walk it, so a new key is one line. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kr/error.h"
#include "kr/util.h"
#include "config.h"

#define CONFIG_MAX_BYTES (64 * 1024)
#define DEFAULT_VIRTIOFSD "/usr/lib/qemu/virtiofsd"
#define DEFAULT_STATE_ROOT "/run/kata-run"

enum key_type { KEY_STR, KEY_UINT };

/* String checks. */
#define KEY_PATH 1u		/* must be absolute */
#define KEY_PATH_OR_EMPTY 2u	/* absolute, or "" (= search) */

struct key {
	const char *name;
	enum key_type type;
	size_t off, size;		/* the field in struct kr_config */
	unsigned min, max;		/* KEY_UINT */
	const char *const *choices;	/* KEY_STR enum, NULL-terminated */
	unsigned flags;
	const char *doc;		/* comment lines for kr_config_dump */
};

static const char *const hypervisors[] = { "auto", "libvirt", "kvm", NULL };
static const char *const log_levels[] = { "error", "warn", "info", "debug", NULL };

#define FIELD(f) offsetof(struct kr_config, f), sizeof(((struct kr_config *)0)->f)
#define STR(f, choices, flags, doc) { #f, KEY_STR, FIELD(f), 0, 0, choices, flags, doc }
#define UINT(f, lo, hi, doc) { #f, KEY_UINT, FIELD(f), lo, hi, NULL, 0, doc }

static const struct key keys[] = {
	STR(hypervisor, hypervisors, 0,
	    "VM backend: auto (kvm where /dev/kvm runs a standard guest and kata-vmm is\n"
	    "installed, else libvirt), libvirt, or kvm (the built-in VMM, kata-vmm)."),
	STR(kernel, NULL, KEY_PATH_OR_EMPTY,
	    "Guest kernel (absolute path). \"\" = search next to kata-run, then\n"
	    "<prefix>/share/kata-run/, then /usr/share/kata-run/ for " KR_KERNEL_NAME "."),
	STR(initrd, NULL, KEY_PATH_OR_EMPTY,
	    "Guest initramfs (absolute path). \"\" = search as for the kernel, for\n"
	    KR_INITRD_NAME "."),
	UINT(vcpus, 1, 64, "Virtual CPUs per VM: 1..64."),
	UINT(memory_mib, 64, 65536, "Guest memory in MiB: 64..65536."),
	STR(log_level, log_levels, 0, "Log level: error, warn, info or debug."),
	UINT(boot_timeout_s, 1, 600,
	     "Seconds from starting the VM until the guest agent must answer: 1..600."),
	UINT(call_timeout_s, 1, 600, "Seconds each call to the guest agent may take: 1..600."),
	STR(libvirt_uri, NULL, 0,
	    "libvirt connection. \"\" = qemu:///embed (no daemon; QEMU runs as root);\n"
	    "\"qemu:///system\" uses libvirtd (scripts/libvirt-setup.sh)."),
	STR(virtiofsd, NULL, KEY_PATH,
	    "virtiofsd binary (absolute path), shares the container's files with the VM."),
	STR(state_root, NULL, KEY_PATH,
	    "Directory for runtime state: sockets, logs, VM state (absolute path)."),
	STR(kernel_params, NULL, 0, "Appended to the guest kernel command line."),
};

void kr_config_defaults(struct kr_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	strcpy(cfg->hypervisor, "auto");
	cfg->vcpus = 1;
	cfg->memory_mib = 512;
	strcpy(cfg->log_level, "warn");
	cfg->boot_timeout_s = 30;
	cfg->call_timeout_s = 30;
	strcpy(cfg->virtiofsd, DEFAULT_VIRTIOFSD);
	strcpy(cfg->state_root, DEFAULT_STATE_ROOT);
}

static const struct key *key_find(const char *name)
{
	for (size_t i = 0; i < KR_ARRAY_SIZE(keys); i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

static int unknown_key(const char *name, struct kr_err *err)
{
	char known[512] = "";
	size_t n = 0;

	for (size_t i = 0; i < KR_ARRAY_SIZE(keys); i++)
		n += (size_t)snprintf(known + n, sizeof(known) - n, "%s%s",
				      i ? ", " : "", keys[i].name);
	return kr_err_set(err, KR_INVALID_ARGUMENT, "unknown key \"%.64s\" (known keys: %s)",
			  name, known);
}

/* Strict decimal: digits only, no sign, no leading zeros (as TOML), no
 * overflow.  Anything else is an error, never a partial value. */
static int parse_uint(const struct key *k, const char *s, unsigned *out, struct kr_err *err)
{
	unsigned long long v = 0;
	const char *p;

	if (*s == '-' && s[1] >= '0' && s[1] <= '9')
		return kr_err_set(err, KR_INVALID_ARGUMENT, "%s: %.32s is negative (expected %u..%u)",
				  k->name, s, k->min, k->max);
	if (*s == '\0')
		return kr_err_set(err, KR_INVALID_ARGUMENT, "%s: empty value (expected an integer %u..%u)",
				  k->name, k->min, k->max);
	for (p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return kr_err_set(err, KR_INVALID_ARGUMENT,
					  "%s: \"%.32s\" is not a whole number (expected %u..%u)",
					  k->name, s, k->min, k->max);
		if (v <= UINT_MAX)
			v = v * 10 + (unsigned)(*p - '0');
	}
	if (s[0] == '0' && s[1])
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "%s: %.32s has a leading zero (not allowed in TOML)", k->name, s);
	if (v < k->min || v > k->max)
		return kr_err_set(err, KR_INVALID_ARGUMENT, "%s: %.32s is out of range (%u..%u)",
				  k->name, s, k->min, k->max);
	*out = (unsigned)v;
	return 0;
}

static int check_choice(const struct key *k, const char *s, struct kr_err *err)
{
	char list[128] = "";
	size_t n = 0;

	for (const char *const *c = k->choices; *c; c++)
		if (strcmp(*c, s) == 0)
			return 0;
	for (const char *const *c = k->choices; *c; c++)
		n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s",
				      c == k->choices ? "" : ", ", *c);
	return kr_err_set(err, KR_INVALID_ARGUMENT, "%s: \"%.64s\" is not one of %s",
			  k->name, s, list);
}

/* Every check happens before the field is written: a rejected value
 * leaves the old one in place. */
static int check_str(const struct key *k, const char *s, struct kr_err *err)
{
	size_t len = strlen(s);

	if (len >= k->size)
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "%s: value is %zu bytes long, at most %zu fit", k->name, len,
				  k->size - 1);
	/* A control character (newline, escape) could not be written back
	 * by kr_config_dump and has no business in a path or a URI. */
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return kr_err_set(err, KR_INVALID_ARGUMENT,
					  "%s: value contains a control character (0x%02x)",
					  k->name, *p);
	if (k->choices)
		return check_choice(k, s, err);
	if ((k->flags & KEY_PATH_OR_EMPTY) && *s == '\0')
		return 0;
	/* Relative paths would depend on the directory kata-run happens to
	 * be started from (containerd's, for the shim). */
	if ((k->flags & (KEY_PATH | KEY_PATH_OR_EMPTY)) && *s != '/')
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "%s: \"%.200s\" is not an absolute path (must start with '/')",
				  k->name, s);
	return 0;
}

static int set_value(struct kr_config *cfg, const struct key *k, const char *value,
		     struct kr_err *err)
{
	char *field = (char *)cfg + k->off;
	unsigned v = 0;

	if (k->type == KEY_UINT) {
		if (parse_uint(k, value, &v, err) < 0)
			return -1;
		memcpy(field, &v, sizeof(v));
		return 0;
	}
	if (check_str(k, value, err) < 0)
		return -1;
	memcpy(field, value, strlen(value) + 1);
	return 0;
}

int kr_config_set(struct kr_config *cfg, const char *key, const char *value,
		  struct kr_err *err)
{
	const struct key *k = key_find(key);

	if (!k)
		return unknown_key(key, err);
	return set_value(cfg, k, value, err);
}

/* ---- the parser ----------------------------------------------------------- */

static char *skip_ws(char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* A character as an error message may show it. */
static char shown(char c)
{
	return (unsigned char)c < 0x20 || c == 0x7f ? '?' : c;
}

static bool key_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '-';
}

/* Decode a "..." string in place: *p points at the opening quote.  On
 * success *p points after the closing quote and *out at the value. */
static int parse_string(char **p, char **out, struct kr_err *err)
{
	char *r = *p + 1, *w = r;

	*out = r;
	for (;;) {
		char c = *r++;

		if (c == '\0')
			return kr_err_set(err, KR_INVALID_ARGUMENT,
					  "unterminated string (missing closing '\"')");
		if (c == '"')
			break;
		if (c == '\\') {
			c = *r++;
			if (c != '"' && c != '\\')
				return kr_err_set(err, KR_INVALID_ARGUMENT,
						  "unsupported escape '\\%c' in string (only \\\" and \\\\)",
						  shown(c));
		}
		*w++ = c;
	}
	*w = '\0';
	*p = r;
	return 0;
}

struct parse_state {
	struct kr_config *cfg;
	unsigned first_line[KR_ARRAY_SIZE(keys)];	/* 0 = not seen yet */
};

/* The value after "key =": a "string" or a bare token (an integer). On
 * success the value is NUL-terminated and only a comment may follow it. */
static int parse_value(char *p, const char *name, char **value, bool *quoted,
		       struct kr_err *err)
{
	char *rest;

	if (*p == '"') {
		*quoted = true;
		if (parse_string(&p, value, err) < 0)
			return -1;
	} else if (*p == '\'') {
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "%s: single-quoted strings are not supported; use double quotes", name);
	} else if (*p == '\0' || *p == '#') {
		return kr_err_set(err, KR_INVALID_ARGUMENT, "%s: missing value after '='", name);
	} else {
		*quoted = false;
		*value = p;
		while (*p && *p != ' ' && *p != '\t' && *p != '#')
			p++;
	}
	rest = skip_ws(p);
	if (*rest != '\0' && *rest != '#')
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "%s: unexpected text after the value: \"%.32s\"", name, rest);
	*p = '\0';	/* ends a bare value; after a string's quote, harmless */
	return 0;
}

static int parse_line(struct parse_state *st, char *line, unsigned lineno, struct kr_err *err)
{
	char *p = skip_ws(line), *name, *name_end, *value = NULL;
	const struct key *k;
	bool quoted = false;
	size_t i;

	if (*p == '\0' || *p == '#')
		return 0;
	if (*p == '[')
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "tables ([...]) are not supported: the file is flat key = value lines");
	name = p;
	while (key_char(*p))
		p++;
	if (p == name)
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "expected a key name (letters, digits, _ or -), found '%c'",
				  shown(*p));
	if (*p != '=' && *p != ' ' && *p != '\t' && *p != '\0' && *p != '#')
		return kr_err_set(err, KR_INVALID_ARGUMENT, "invalid character '%c' in key name",
				  shown(*p));
	name_end = p;
	p = skip_ws(p);
	if (*p != '=')
		return kr_err_set(err, KR_INVALID_ARGUMENT, "missing '=' after \"%.*s\"",
				  (int)(name_end - name > 64 ? 64 : name_end - name), name);
	*name_end = '\0';
	if (parse_value(skip_ws(p + 1), name, &value, &quoted, err) < 0)
		return -1;

	k = key_find(name);
	if (!k)
		return unknown_key(name, err);
	i = (size_t)(k - keys);
	if (st->first_line[i])
		return kr_err_set(err, KR_INVALID_ARGUMENT, "duplicate key \"%s\" (first set on line %u)",
				  name, st->first_line[i]);
	st->first_line[i] = lineno;
	if (k->type == KEY_STR && !quoted)
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "%s: a string must be in double quotes: %s = \"%.64s\"", name, name, value);
	if (k->type == KEY_UINT && quoted)
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "%s: an integer is written without quotes: %s = %.32s", name, name, value);
	return set_value(st->cfg, k, value, err);
}

/* Parses into a copy so that a bad file leaves *cfg untouched. */
int kr_config_parse(struct kr_config *cfg, const char *text, const char *name,
		    struct kr_err *err)
{
	kr_cleanup_free char *buf = kr_xstrdup(text);
	kr_cleanup_free struct parse_state *st = kr_xcalloc(1, sizeof(*st));
	kr_cleanup_free struct kr_config *tmp = kr_xcalloc(1, sizeof(*tmp));
	unsigned lineno = 0;
	char *line = buf;

	*tmp = *cfg;
	st->cfg = tmp;
	while (line) {
		char *nl = strchr(line, '\n');
		size_t len;

		if (nl)
			*nl = '\0';
		len = strlen(line);
		if (len && line[len - 1] == '\r')	/* CRLF files */
			line[len - 1] = '\0';
		lineno++;
		if (parse_line(st, line, lineno, err) < 0)
			return kr_err_wrap(err, "%s:%u", name, lineno);
		line = nl ? nl + 1 : NULL;
	}
	*cfg = *tmp;
	return 0;
}

/* ---- loading -------------------------------------------------------------- */

/* from: what named the file ("--config", "$KATA_RUN_CONFIG"), or NULL for
 * the default path, which may be absent. */
static int load_file(struct kr_config *cfg, const char *path, const char *from,
		     struct kr_err *err)
{
	kr_cleanup_free char *text = NULL;
	struct kr_err e = { 0 };
	size_t len;

	if (kr_read_file(path, CONFIG_MAX_BYTES, &text, &len, &e) < 0) {
		if (!from && e.errnum == ENOENT)
			return 0;	/* no file: the built-in defaults */
		if (err)
			*err = e;
		if (e.errnum == EFBIG)
			return kr_err_set(err, KR_INVALID_ARGUMENT,
					  "config file %.512s: larger than %d KiB (is it the right file?)",
					  path, CONFIG_MAX_BYTES / 1024);
		if (from)
			return kr_err_wrap(err, "config file named by %s", from);
		return kr_err_wrap(err, "config file");
	}
	if (strlen(text) != len)
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "%.512s: contains a NUL byte (not a text file)", path);
	if (kr_config_parse(cfg, text, path, err) < 0)
		return -1;
	if (kr_snprintf(cfg->path, sizeof(cfg->path), "%s", path) < 0)
		return kr_err_set(err, KR_INVALID_ARGUMENT, "config file path too long");
	return 0;
}

int kr_config_load(struct kr_config *cfg, const char *path, struct kr_err *err)
{
	const char *env = getenv("KATA_RUN_CONFIG");

	kr_config_defaults(cfg);
	if (path)
		return load_file(cfg, path, "--config", err);
	/* An empty variable counts as unset, as for most tools. */
	if (env && *env)
		return load_file(cfg, env, "$KATA_RUN_CONFIG", err);
	return load_file(cfg, KR_CONFIG_DEFAULT_PATH, NULL, err);
}

/* ---- guest kernel and initramfs ------------------------------------------- */

/* 0 if path is a regular file we can open for reading; else -1 and a short
 * reason in why. */
static int usable_file(const char *path, char *why, size_t size)
{
	kr_cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	struct stat st;

	if (fd < 0 || fstat(fd, &st) < 0) {
		snprintf(why, size, "%s", strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(why, size, "not a regular file");
		return -1;
	}
	return 0;
}

struct guest_file {
	const char *what;	/* "guest kernel" */
	const char *key;	/* "kernel" */
	const char *name;	/* file name searched for */
	const char *make;	/* the make target that builds it */
};

static const struct guest_file guest_kernel = {
	"guest kernel", "kernel", KR_KERNEL_NAME, "make guest-kernel" };
static const struct guest_file guest_initrd = {
	"guest initramfs", "initrd", KR_INITRD_NAME, "make initramfs" };

static const char *config_name(const struct kr_config *cfg)
{
	return cfg->path[0] ? cfg->path : KR_CONFIG_DEFAULT_PATH;
}

/* Append to a message; what does not fit is cut (an error message, not
 * data). */
static void __attribute__((format(printf, 3, 4)))
appendf(char *buf, size_t size, const char *fmt, ...)
{
	size_t n = strlen(buf);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf + n, size - n, fmt, ap);
	va_end(ap);
}

/* Check or search one file; on failure write why (and the fix) to msg. */
static int find_one(const struct kr_config *cfg, char *field, size_t size,
		    const struct guest_file *g, const char *exe_dir, char *msg, size_t msize)
{
	char cand[3][PATH_MAX], why[3][128];
	size_t n = 0;

	if (field[0]) {
		if (usable_file(field, why[0], sizeof(why[0])) == 0)
			return 0;
		appendf(msg, msize, "%s %s (%s = in %s): %s", g->what, field, g->key,
			config_name(cfg), why[0]);
		return -1;
	}
	if (exe_dir && exe_dir[0]) {
		/* A path too long to exist is simply not a candidate. */
		if (kr_snprintf(cand[n], PATH_MAX, "%s/%s", exe_dir, g->name) >= 0)
			n++;
		if (kr_snprintf(cand[n], PATH_MAX, "%s/../share/kata-run/%s", exe_dir, g->name) >= 0)
			n++;
	}
	snprintf(cand[n++], PATH_MAX, "/usr/share/kata-run/%s", g->name);
	for (size_t i = 0; i < n; i++)
		if (usable_file(cand[i], why[i], sizeof(why[i])) == 0 &&
		    kr_snprintf(field, size, "%s", cand[i]) >= 0)
			return 0;
	appendf(msg, msize, "%s %s not found: looked at ", g->what, g->name);
	for (size_t i = 0; i < n; i++)
		appendf(msg, msize, "%s%s (%s)", i ? ", " : "", cand[i], why[i]);
	appendf(msg, msize, "; fix: %s, or set %s = \"/path/to/%s\" in %s", g->make, g->key,
		g->name, config_name(cfg));
	return -1;
}

/* Both files are looked for even when the first is missing, so that one
 * error names everything that needs fixing. */
int kr_config_find_guest(struct kr_config *cfg, const char *exe_dir,
			 struct kr_err *err)
{
	char kmsg[KR_ERR_MSG_MAX] = "", imsg[KR_ERR_MSG_MAX] = "";
	int rk, ri;

	rk = find_one(cfg, cfg->kernel, sizeof(cfg->kernel), &guest_kernel, exe_dir,
		      kmsg, sizeof(kmsg));
	ri = find_one(cfg, cfg->initrd, sizeof(cfg->initrd), &guest_initrd, exe_dir,
		      imsg, sizeof(imsg));
	if (rk == 0 && ri == 0)
		return 0;
	return kr_err_set(err, KR_NOT_FOUND, "%s%s%s", kmsg, rk && ri ? "; " : "", imsg);
}

/* ---- dump ----------------------------------------------------------------- */

static void dump_comment(FILE *f, const char *text)
{
	fputs("# ", f);
	for (const char *p = text; *p; p++) {
		/* A path in a comment must not end the comment early. */
		if (*p == '\n')
			fputs("\n# ", f);
		else
			fputc((unsigned char)*p < 0x20 ? '?' : *p, f);
	}
	fputc('\n', f);
}

static void dump_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

void kr_config_dump(const struct kr_config *cfg, int fd)
{
	kr_cleanup_free char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return;
	fputs("# kata-run configuration (docs/config.md).\n", f);
	if (cfg->path[0]) {
		fputs("# Effective values: built-in defaults, then ", f);
		for (const char *p = cfg->path; *p; p++)
			fputc((unsigned char)*p < 0x20 ? '?' : *p, f);
		fputs(", then command-line flags.\n", f);
	} else {
		fputs("# Effective values: built-in defaults, then command-line flags.\n", f);
	}
	for (size_t i = 0; i < KR_ARRAY_SIZE(keys); i++) {
		const struct key *k = &keys[i];
		const char *field = (const char *)cfg + k->off;

		fputc('\n', f);
		dump_comment(f, k->doc);
		fprintf(f, "%s = ", k->name);
		if (k->type == KEY_UINT) {
			unsigned v;

			memcpy(&v, field, sizeof(v));
			fprintf(f, "%u", v);
		} else {
			dump_string(f, field);
		}
		fputc('\n', f);
	}
	if (fclose(f) == 0)
		kr_write_full(fd, buf, len);
}
