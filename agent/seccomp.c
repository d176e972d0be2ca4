/* linux.seccomp -> a libseccomp filter, loaded (seccomp_apply) or only built
 * and exported (seccomp_check).  Follows runc's conversion: unknown syscall
 * names are skipped, rules whose action is the default action are dropped
 * (libseccomp refuses them), several conditions on the same argument become
 * one rule per condition (libseccomp allows one comparison per argument),
 * and ERRNO/TRACE default to EPERM. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kr/error.h"
#include "kr/log.h"
#include "kr/util.h"
#include "security.h"

static int to_scmp_action(enum oci_seccomp_action a, bool has_errno,
			  unsigned errno_ret, uint32_t *out)
{
	unsigned e = has_errno ? errno_ret : EPERM;

	switch (a) {
	case OCI_SECCOMP_KILL: *out = SCMP_ACT_KILL_THREAD; return 0;
	case OCI_SECCOMP_KILL_PROCESS: *out = SCMP_ACT_KILL_PROCESS; return 0;
	case OCI_SECCOMP_TRAP: *out = SCMP_ACT_TRAP; return 0;
	case OCI_SECCOMP_ERRNO: *out = SCMP_ACT_ERRNO(e); return 0;
	case OCI_SECCOMP_TRACE: *out = SCMP_ACT_TRACE(e); return 0;
	case OCI_SECCOMP_ALLOW: *out = SCMP_ACT_ALLOW; return 0;
	case OCI_SECCOMP_LOG: *out = SCMP_ACT_LOG; return 0;
	}
	return -1;
}

static int to_scmp_op(enum oci_seccomp_op op, enum scmp_compare *out)
{
	switch (op) {
	case OCI_SCMP_NE: *out = SCMP_CMP_NE; return 0;
	case OCI_SCMP_LT: *out = SCMP_CMP_LT; return 0;
	case OCI_SCMP_LE: *out = SCMP_CMP_LE; return 0;
	case OCI_SCMP_EQ: *out = SCMP_CMP_EQ; return 0;
	case OCI_SCMP_GE: *out = SCMP_CMP_GE; return 0;
	case OCI_SCMP_GT: *out = SCMP_CMP_GT; return 0;
	case OCI_SCMP_MASKED_EQ: *out = SCMP_CMP_MASKED_EQ; return 0;
	}
	return -1;
}

/* "SCMP_ARCH_X86_64" -> libseccomp's "x86_64" -> token; 0 if unknown. */
static uint32_t arch_token(const char *name)
{
	static const char prefix[] = "SCMP_ARCH_";
	char buf[32];
	size_t n;

	if (strncmp(name, prefix, sizeof(prefix) - 1))
		return 0;
	name += sizeof(prefix) - 1;
	n = strlen(name);
	if (n == 0 || n >= sizeof(buf))
		return 0;
	for (size_t i = 0; i <= n; i++)
		buf[i] = (char)tolower((unsigned char)name[i]);
	return seccomp_arch_resolve_name(buf);
}

static int add_arches(scmp_filter_ctx ctx, const struct oci_seccomp *sc,
		      struct kr_err *err)
{
	for (size_t i = 0; i < sc->n_architectures; i++) {
		const char *name = sc->architectures[i];
		uint32_t arch = arch_token(name);
		int rc;

		if (!arch)
			return kr_err_set(err, KR_INVALID_ARGUMENT,
					  "seccomp: unknown architecture \"%s\"",
					  name);
		rc = seccomp_arch_add(ctx, arch);
		if (rc < 0 && rc != -EEXIST)	/* the native one is there */
			return kr_err_errno(err, -rc, "seccomp: add architecture %s",
					    name);
	}
	return 0;
}

static bool same_arg_twice(const struct oci_seccomp_rule *rule)
{
	unsigned seen = 0;

	for (size_t i = 0; i < rule->n_args; i++) {
		if (seen & (1u << rule->args[i].index))
			return true;
		seen |= 1u << rule->args[i].index;
	}
	return false;
}

static int add_rule_for(scmp_filter_ctx ctx, uint32_t act, int nr,
			const char *name, const struct scmp_arg_cmp *cmps,
			size_t n, bool split, struct kr_err *err)
{
	int rc;

	if (!split) {
		rc = seccomp_rule_add_array(ctx, act, nr, (unsigned)n, cmps);
		if (rc < 0)
			return kr_err_errno(err, -rc, "seccomp: add rule for %s",
					    name);
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		rc = seccomp_rule_add_array(ctx, act, nr, 1, &cmps[i]);
		if (rc < 0)
			return kr_err_errno(err, -rc, "seccomp: add rule for %s",
					    name);
	}
	return 0;
}

static int add_rule(scmp_filter_ctx ctx, uint32_t def_act, size_t idx,
		    const struct oci_seccomp_rule *rule, struct kr_err *err)
{
	struct scmp_arg_cmp cmps[16];
	enum scmp_compare op;
	uint32_t act;
	size_t n = rule->n_args;

	if (to_scmp_action(rule->action, rule->has_errno_ret, rule->errno_ret,
			   &act) < 0)
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "seccomp: syscalls[%zu]: unknown action", idx);
	if (act == def_act)
		return 0;
	if (n > KR_ARRAY_SIZE(cmps))
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "seccomp: syscalls[%zu]: too many args", idx);
	for (size_t i = 0; i < n; i++) {
		const struct oci_seccomp_arg *a = &rule->args[i];

		if (a->index >= 6 || to_scmp_op(a->op, &op) < 0)
			return kr_err_set(err, KR_INVALID_ARGUMENT,
					  "seccomp: syscalls[%zu].args[%zu]: invalid",
					  idx, i);
		cmps[i] = (struct scmp_arg_cmp){ .arg = a->index, .op = op,
			.datum_a = a->value, .datum_b = a->value_two };
	}
	for (size_t i = 0; i < rule->n_names; i++) {
		const char *name = rule->names[i];
		int nr = seccomp_syscall_resolve_name(name);

		if (nr == __NR_SCMP_ERROR) {
			kr_debug("seccomp: skipping unknown syscall %s", name);
			continue;
		}
		if (add_rule_for(ctx, act, nr, name, cmps, n,
				 same_arg_twice(rule), err) < 0)
			return -1;
	}
	return 0;
}

static int build_filter(const struct oci_seccomp *sc, scmp_filter_ctx *out,
			struct kr_err *err)
{
	scmp_filter_ctx ctx;
	uint32_t def;
	int rc;

	*out = NULL;
	if (to_scmp_action(sc->default_action, sc->has_default_errno_ret,
			   sc->default_errno_ret, &def) < 0)
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "seccomp: unknown default action");
	ctx = seccomp_init(def);
	if (!ctx)
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "seccomp: default action not supported by libseccomp or the kernel");
	/* The launch code sets no_new_privs itself, only when asked. */
	rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
	if (rc < 0) {
		kr_err_errno(err, -rc, "seccomp: clear the no_new_privs attribute");
		goto fail;
	}
	if (add_arches(ctx, sc, err) < 0)
		goto fail;
	for (size_t i = 0; i < sc->n_rules; i++)
		if (add_rule(ctx, def, i, &sc->rules[i], err) < 0)
			goto fail;
	*out = ctx;
	return 0;
fail:
	seccomp_release(ctx);
	return -1;
}

int seccomp_apply(const struct oci_seccomp *sc, struct kr_err *err)
{
	scmp_filter_ctx ctx;
	int rc;

	if (build_filter(sc, &ctx, err) < 0)
		return -1;
	rc = seccomp_load(ctx);
	seccomp_release(ctx);
	if (rc < 0)
		return kr_err_errno(err, -rc, "seccomp: load the filter");
	return 0;
}

/* Instructions in an exported program; 0 if unknown (/dev/null). */
static size_t exported_insns(int fd)
{
	struct stat st;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return 0;
	return (size_t)st.st_size / 8;	/* sizeof(struct sock_filter) */
}

int seccomp_check(const struct oci_seccomp *sc, struct kr_err *err)
{
	scmp_filter_ctx ctx;
	size_t insns = 0;
	int fd, rc;

	if (build_filter(sc, &ctx, err) < 0)
		return -1;
	/* Exporting runs libseccomp's BPF generation without loading; the
	 * size then tells whether the kernel would take the program. */
	fd = memfd_create("seccomp-bpf", MFD_CLOEXEC);
	if (fd < 0)
		fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		seccomp_release(ctx);
		return kr_err_sys(err, "seccomp: open a file to export to");
	}
	rc = seccomp_export_bpf(ctx, fd);
	if (rc == 0)
		insns = exported_insns(fd);
	close(fd);
	seccomp_release(ctx);
	if (rc < 0)
		return kr_err_errno(err, -rc, "seccomp: generate the filter");
	if (insns > BPF_MAXINSNS)
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "seccomp: the filter has %zu instructions, more than the kernel's %d",
				  insns, BPF_MAXINSNS);
	return 0;
}
