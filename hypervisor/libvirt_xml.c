/* The libvirt domain XML for a kata-run VM: a pure function of its inputs,
 * so the unit tests check it without libvirt.  Every string that goes into
 * the XML is escaped. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hypervisor.h"
#include "kr/util.h"

char *hv_xml_escape(const char *s)
{
	size_t n = 0;
	char *out, *o;

	for (const char *p = s; *p; p++) {
		switch (*p) {
		case '&': n += 5; break;
		case '<': case '>': n += 4; break;
		case '"': case '\'': n += 6; break;
		default: n++;
		}
	}
	o = out = kr_xcalloc(n + 1, 1);
	for (const char *p = s; *p; p++) {
		const char *r = NULL;
		switch (*p) {
		case '&': r = "&amp;"; break;
		case '<': r = "&lt;"; break;
		case '>': r = "&gt;"; break;
		case '"': r = "&quot;"; break;
		case '\'': r = "&apos;"; break;
		}
		if (r) {
			size_t l = strlen(r);
			memcpy(o, r, l);
			o += l;
		} else {
			*o++ = *p;
		}
	}
	return out;
}

/* Printf-like appends where %s arguments are escaped by the caller through
 * esc(); an open_memstream keeps it simple. */
static bool bad_chars(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 && *p != '\t')
			return true;	/* control characters are not valid XML 1.0 */
	return false;
}

char *hv_libvirt_xml(const struct hv_domain_desc *d, struct kr_err *err)
{
	const char *strs[] = { d->name, d->kernel, d->cmdline, d->agent_socket,
			       d->console_log };
	const char *names[] = { "name", "kernel", "cmdline", "agent socket", "console log" };
	char *e_name = NULL, *e_kernel = NULL, *e_initrd = NULL, *e_cmd = NULL,
	     *e_agent = NULL, *e_log = NULL, *e_share = NULL, *e_vfsd = NULL;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	for (size_t i = 0; i < KR_ARRAY_SIZE(strs); i++) {
		if (!strs[i] || !*strs[i]) {
			kr_err_set(err, KR_INVALID_ARGUMENT, "domain XML: %s is empty", names[i]);
			return NULL;
		}
		if (bad_chars(strs[i])) {
			kr_err_set(err, KR_INVALID_ARGUMENT, "domain XML: %s contains a control character",
				   names[i]);
			return NULL;
		}
	}
	if ((d->initrd && bad_chars(d->initrd)) || (d->shared_dir && bad_chars(d->shared_dir)) ||
	    (d->virtiofsd && bad_chars(d->virtiofsd))) {
		kr_err_set(err, KR_INVALID_ARGUMENT, "domain XML: a path contains a control character");
		return NULL;
	}
	if (d->accel != HV_ACCEL_TCG && d->accel != HV_ACCEL_KVM) {
		kr_err_set(err, KR_INVALID_ARGUMENT, "domain XML: accel must be tcg or kvm");
		return NULL;
	}

	e_name = hv_xml_escape(d->name);
	e_kernel = hv_xml_escape(d->kernel);
	e_initrd = d->initrd ? hv_xml_escape(d->initrd) : NULL;
	e_cmd = hv_xml_escape(d->cmdline);
	e_agent = hv_xml_escape(d->agent_socket);
	e_log = hv_xml_escape(d->console_log);
	e_share = d->shared_dir ? hv_xml_escape(d->shared_dir) : NULL;
	e_vfsd = hv_xml_escape(d->virtiofsd ? d->virtiofsd : HV_VIRTIOFSD);

	f = open_memstream(&buf, &len);
	if (!f) {
		kr_err_sys(err, "domain XML: open_memstream");
		goto out;
	}
	fprintf(f, "<domain type='%s'>\n", d->accel == HV_ACCEL_KVM ? "kvm" : "qemu");
	fprintf(f, "  <name>%s</name>\n", e_name);
	fprintf(f, "  <memory unit='MiB'>%u</memory>\n", d->memory_mib ? d->memory_mib : 512);
	fprintf(f, "  <vcpu>%u</vcpu>\n", d->vcpus ? d->vcpus : 1);
	/* virtio-fs needs guest RAM the vhost-user daemon can map. */
	fputs("  <memoryBacking>\n    <source type='memfd'/>\n    <access mode='shared'/>\n"
	      "  </memoryBacking>\n", f);
	fputs("  <os>\n    <type arch='x86_64' machine='q35'>hvm</type>\n", f);
	fprintf(f, "    <kernel>%s</kernel>\n", e_kernel);
	if (e_initrd)
		fprintf(f, "    <initrd>%s</initrd>\n", e_initrd);
	fprintf(f, "    <cmdline>%s</cmdline>\n", e_cmd);
	fputs("  </os>\n", f);
	/* ACPI lets the guest power itself off on q35. */
	fputs("  <features>\n    <acpi/>\n  </features>\n", f);
	if (d->accel == HV_ACCEL_KVM)
		fputs("  <cpu mode='host-passthrough'/>\n", f);
	else
		fputs("  <cpu mode='maximum'/>\n", f);
	fputs("  <clock offset='utc'/>\n", f);
	fputs("  <on_poweroff>destroy</on_poweroff>\n  <on_reboot>destroy</on_reboot>\n"
	      "  <on_crash>destroy</on_crash>\n", f);
	fputs("  <devices>\n", f);
	fputs("    <controller type='usb' model='none'/>\n", f);
	fputs("    <controller type='virtio-serial' index='0'/>\n", f);
	fprintf(f, "    <serial type='file'>\n      <source path='%s'/>\n"
		   "      <target port='0'/>\n    </serial>\n", e_log);
	fprintf(f, "    <channel type='unix'>\n      <source mode='bind' path='%s'/>\n"
		   "      <target type='virtio' name='%s'/>\n    </channel>\n",
		e_agent, HV_AGENT_PORT);
	if (e_share)
		fprintf(f, "    <filesystem type='mount' accessmode='passthrough'>\n"
			   "      <driver type='virtiofs'/>\n"
			   "      <binary path='%s'>\n        <cache mode='none'/>\n      </binary>\n"
			   "      <source dir='%s'/>\n      <target dir='%s'/>\n"
			   "    </filesystem>\n", e_vfsd, e_share, HV_SHARE_TAG);
	/* Entropy: without it the guest's first getrandom() (json-c's hash
	 * seed in the agent) blocks until the crng is ready, seconds into
	 * a TCG boot. */
	fputs("    <rng model='virtio'>\n      <backend model='random'>/dev/urandom</backend>\n"
	      "    </rng>\n", f);
	fputs("    <memballoon model='none'/>\n", f);
	fputs("  </devices>\n</domain>\n", f);
	if (fclose(f) != 0) {
		kr_err_sys(err, "domain XML: write");
		free(buf);
		buf = NULL;
	}
out:
	free(e_name); free(e_kernel); free(e_initrd); free(e_cmd);
	free(e_agent); free(e_log); free(e_share); free(e_vfsd);
	return buf;
}
