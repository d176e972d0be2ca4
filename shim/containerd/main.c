/* containerd-shim-kata-run-v2: argument parsing and dispatch.
 *
 * containerd runs the shim with Go `flag` syntax (spec section 2.2):
 *   -namespace NS -address PATH -publish-binary PATH -id ID [-debug] start
 *   ... -bundle PATH delete
 *   -namespace NS -id ID -address PATH ... (no action: the daemon)
 * Like Go's flag package we accept -x and --x, "-x v" and "-x=v", and stop
 * at the first non-flag argument (or "--"): that is the action. */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kr/log.h"
#include "kr/util.h"
#include "shim.h"

#ifndef KR_VERSION
#define KR_VERSION "0.0.0"
#endif

struct parsed {
	struct shim_args a;
	bool version;
	bool help;
	const char *action;		/* NULL = the daemon */
};

struct flag {
	const char *name;
	const char **str;		/* string flag, or */
	bool *b;			/* bool flag */
};

static void usage(FILE *f)
{
	fputs("Usage: " SHIM_NAME " [flags] [start|delete]\n"
	      "containerd runtime v2 shim: runs each pod in its own VM.\n"
	      "  -namespace NS          containerd namespace (required)\n"
	      "  -id ID                 container id (required)\n"
	      "  -address PATH          containerd's gRPC socket\n"
	      "  -publish-binary PATH   containerd's executable\n"
	      "  -bundle PATH           the bundle (delete; default: the current directory)\n"
	      "  -socket PATH           serve on this socket instead of fd 3\n"
	      "  -debug                 debug logging\n"
	      "  -v                     print the version\n"
	      "Without an action the shim runs as the daemon started by `start`.\n", f);
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
	va_list ap;

	fputs(SHIM_NAME ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

/* Go's strconv.ParseBool. */
static int parse_bool(const char *v, bool *out)
{
	static const char *const yes[] = { "1", "t", "T", "true", "TRUE", "True" };
	static const char *const no[] = { "0", "f", "F", "false", "FALSE", "False" };

	for (size_t i = 0; i < KR_ARRAY_SIZE(yes); i++) {
		if (!strcmp(v, yes[i]))
			return *out = true, 0;
		if (!strcmp(v, no[i]))
			return *out = false, 0;
	}
	return -1;
}

static const struct flag *find_flag(const struct flag *flags, const char *name,
				    size_t len)
{
	for (; flags->name; flags++)
		if (strlen(flags->name) == len && !strncmp(flags->name, name, len))
			return flags;
	return NULL;
}

/* One flag at argv[*i] (already known to start with '-'); may consume the
 * next argument as its value.  Returns 0, or 1 after printing why not. */
static int parse_flag(const struct flag *flags, int argc, char **argv, int *i)
{
	const char *arg = argv[*i], *name = arg + 1, *eq;
	const struct flag *f;
	size_t len;

	if (*name == '-')
		name++;
	if (*name == '\0' || *name == '-' || *name == '=')
		return fail("bad flag syntax: %s", arg);
	eq = strchr(name, '=');
	len = eq ? (size_t)(eq - name) : strlen(name);
	f = find_flag(flags, name, len);
	if (!f)
		return fail("flag provided but not defined: %s", arg);
	if (f->b) {
		if (eq && parse_bool(eq + 1, f->b) < 0)
			return fail("invalid boolean value for flag %s", arg);
		if (!eq)
			*f->b = true;
		return 0;
	}
	if (eq) {
		*f->str = eq + 1;
	} else {
		if (*i + 1 >= argc)
			return fail("flag needs an argument: %s", arg);
		*f->str = argv[++*i];
	}
	return 0;
}

static int parse_args(int argc, char **argv, struct parsed *p)
{
	const struct flag flags[] = {
		{ "namespace", &p->a.namespace, NULL },
		{ "id", &p->a.id, NULL },
		{ "address", &p->a.address, NULL },
		{ "publish-binary", &p->a.publish_binary, NULL },
		{ "bundle", &p->a.bundle, NULL },
		{ "socket", &p->a.socket, NULL },
		{ "debug", NULL, &p->a.debug },
		{ "v", NULL, &p->version },
		{ "h", NULL, &p->help },
		{ "help", NULL, &p->help },
		{ NULL, NULL, NULL },
	};
	int i;

	for (i = 1; i < argc; i++) {
		const char *arg = argv[i];

		if (arg[0] != '-' || arg[1] == '\0')
			break;			/* first non-flag: the action */
		if (!strcmp(arg, "--")) {
			i++;
			break;
		}
		if (parse_flag(flags, argc, argv, &i))
			return 1;
	}
	if (i < argc)
		p->action = argv[i++];
	if (i < argc)
		return fail("unexpected argument after the action: %s", argv[i]);
	return 0;
}

/* Both end up in paths (the socket hash, state dirs): refuse anything
 * containerd itself would not have accepted. */
static int check_args(const struct parsed *p)
{
	const struct shim_args *a = &p->a;

	if (!a->namespace || !*a->namespace)
		return fail("-namespace is required");
	if (!shim_id_valid(a->namespace))
		return fail("invalid -namespace \"%.100s\": 1 to 76 of A-Z a-z 0-9 separated by single . _ -",
			    a->namespace);
	if (!a->id || !*a->id)
		return fail("-id is required");
	if (!shim_id_valid(a->id))
		return fail("invalid -id \"%.100s\": 1 to 76 of A-Z a-z 0-9 separated by single . _ -",
			    a->id);
	if (p->action && !strcmp(p->action, "start") && (!a->address || !*a->address))
		return fail("-address is required for start");
	return 0;
}

int main(int argc, char **argv)
{
	struct parsed p = { 0 };

	/* containerd or a client may close a FIFO or socket under us: a
	 * write must fail with EPIPE, not kill the shim. */
	signal(SIGPIPE, SIG_IGN);
	if (parse_args(argc, argv, &p))
		return 1;
	if (p.help) {
		usage(stderr);
		return 0;
	}
	if (p.version) {
		printf("%s %s\n", SHIM_NAME, KR_VERSION);
		return 0;
	}
	kr_log_init(SHIM_NAME, p.a.debug ? KR_LOG_DEBUG : KR_LOG_INFO, 2);
	if (p.action && strcmp(p.action, "start") && strcmp(p.action, "delete"))
		return fail("unknown action \"%.100s\" (start, delete, or none for the daemon)",
			    p.action);
	if (check_args(&p))
		return 1;
	if (!p.action)
		return shim_daemon(&p.a);
	if (!strcmp(p.action, "start"))
		return shim_start(&p.a);
	return shim_delete(&p.a);
}
