/* Unit tests for hypervisor/: backend selection, KVM/TCG detection, config
 * validation, the libvirt domain XML (pure), and the mock backend. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kr/error.h"
#include "kr/log.h"
#include "kr/util.h"
#include "../lib/kr_test.h"
#include "../../hypervisor/hypervisor.h"

static char tmp[64];
static char kernel[128], initrd[128];

static void setup(void)
{
	int fd;

	snprintf(tmp, sizeof(tmp), "/tmp/kr-hv-test.XXXXXX");
	if (!mkdtemp(tmp))
		abort();
	snprintf(kernel, sizeof(kernel), "%s/bzImage", tmp);
	snprintf(initrd, sizeof(initrd), "%s/initrd", tmp);
	fd = open(kernel, O_CREAT | O_WRONLY, 0644);
	close(fd);
	fd = open(initrd, O_CREAT | O_WRONLY, 0644);
	close(fd);
}

static void test_open(void)
{
	struct kr_err err = { 0 };

	CHECK(hypervisor_open("auto", &err) == &hv_libvirt_ops);
	CHECK(hypervisor_open(NULL, &err) == &hv_libvirt_ops);
	CHECK(hypervisor_open("", &err) == &hv_libvirt_ops);
	CHECK(hypervisor_open("libvirt", &err) == &hv_libvirt_ops);
	CHECK(hypervisor_open("mock", &err) == &hv_mock_ops);
	CHECK(hypervisor_open("kvm", &err) == &hv_kvm_ops);
	CHECK(hypervisor_open("xen", &err) == NULL);
	CHECK_CONTAINS(err.msg, "unknown hypervisor \"xen\"");
	CHECK(err.code == KR_INVALID_ARGUMENT);
}

static void mkfile(const char *root, const char *rel, bool dir)
{
	char p[256], d[256];

	snprintf(p, sizeof(p), "%s%s", root, rel);
	snprintf(d, sizeof(d), "%s", p);
	*strrchr(d, '/') = 0;
	kr_mkdir_p(d, 0755, NULL);
	if (dir)
		mkdir(p, 0755);
	else
		close(open(p, O_CREAT | O_WRONLY, 0644));
}

static void test_detect(void)
{
	char root[128];
	const char *why = NULL;

	snprintf(root, sizeof(root), "%s/root1", tmp);
	mkdir(root, 0755);
	CHECK(hv_detect_accel(root, &why) == HV_ACCEL_TCG);
	CHECK_CONTAINS(why, "/dev/kvm is missing");
	mkfile(root, "/dev/kvm", false);
	CHECK(hv_detect_accel(root, &why) == HV_ACCEL_KVM);
	mkfile(root, "/sys/module/kvm_pvm", true);
	CHECK(hv_detect_accel(root, &why) == HV_ACCEL_TCG);
	CHECK_CONTAINS(why, "kvm_pvm");
	CHECK_STREQ(hv_accel_name(HV_ACCEL_TCG), "tcg");
	CHECK_STREQ(hv_accel_name(HV_ACCEL_KVM), "kvm");
}

static void test_validate(void)
{
	struct kr_err err = { 0 };
	struct hv_config c = { .id = "vm1", .kernel = kernel, .initrd = initrd, .shared_dir = tmp };

	CHECK(hv_config_validate(&c, &err) == 0);
	c.kernel = "/nonexistent/bzImage";
	CHECK(hv_config_validate(&c, &err) < 0);
	CHECK_STREQ(err.msg, "kernel /nonexistent/bzImage: No such file or directory");
	CHECK(err.code == KR_NOT_FOUND);
	c.kernel = kernel;
	c.initrd = "/nonexistent/initrd";
	CHECK(hv_config_validate(&c, &err) < 0);
	CHECK_CONTAINS(err.msg, "initrd /nonexistent/initrd");
	c.initrd = initrd;
	c.shared_dir = kernel;
	CHECK(hv_config_validate(&c, &err) < 0);
	CHECK_CONTAINS(err.msg, "shared dir");
	CHECK_CONTAINS(err.msg, "Not a directory");
	c.shared_dir = NULL;
	c.kernel = "relative/bzImage";
	CHECK(hv_config_validate(&c, &err) < 0);
	CHECK_CONTAINS(err.msg, "must be absolute");
	c.kernel = kernel;
	const char *bad_ids[] = { "", "..", ".", "a/b", "a b", "x<y",
		"0123456789012345678901234567890123456789012345678901234567890123456789" };
	for (size_t i = 0; i < KR_ARRAY_SIZE(bad_ids); i++) {
		c.id = bad_ids[i];
		CHECKF(hv_config_validate(&c, &err) < 0, "id '%s'", bad_ids[i]);
	}
	c.id = NULL;
	CHECK(hv_config_validate(&c, &err) < 0);
	c.id = "ok_id-1.2";
	CHECK(hv_config_validate(&c, &err) == 0);
	c.memory_mib = 16;
	CHECK(hv_config_validate(&c, &err) < 0);
	CHECK_CONTAINS(err.msg, "memory 16 MiB");
	c.memory_mib = 0;
	c.vcpus = 1000;
	CHECK(hv_config_validate(&c, &err) < 0);
	CHECK_CONTAINS(err.msg, "vcpus 1000");
	CHECK(hv_config_validate(NULL, &err) < 0);
}

static void test_cmdline(void)
{
	struct kr_err err = { 0 };
	struct hv_config c = { .id = "vm1", .kernel = kernel };
	char buf[512];

	CHECK(hv_cmdline(&c, buf, sizeof(buf), &err) == 0);
	CHECK_STREQ(buf, "console=ttyS0 panic=-1 quiet kata_run.agent.listen=serial:agent.channel.0 "
			 "kata_run.agent.share=kataShared");
	c.cmdline_extra = "debug x=1";
	CHECK(hv_cmdline(&c, buf, sizeof(buf), &err) == 0);
	CHECK(strstr(buf, "kataShared debug x=1") != NULL);
	CHECK(hv_cmdline(&c, buf, 20, &err) < 0);
	/* The kvm backend's line: its own arguments, the agent on vsock. */
	CHECK(hv_cmdline_for(&c, "vsock:1024", HV_KVM_CMDLINE, buf, sizeof(buf), &err) == 0);
	CHECK_STREQ(buf, "console=ttyS0 panic=-1 quiet reboot=k pci=off acpi=off "
		    "kata_run.agent.listen=vsock:1024 kata_run.agent.share=kataShared debug x=1");
}

/* The kvm backend with a stand-in for kata-vmm: a script that records its
 * arguments, creates the vsock socket path and waits. */
static void test_kvm_backend(void)
{
	char dir[] = "/tmp/kr-hv-kvm-XXXXXX", vmm[128], state[160], args[160], sock[200];
	struct hv_config c = { .id = "kvm1", .kernel = kernel, .initrd = initrd };
	struct kr_err err = { 0 };
	struct hv_vm *vm = NULL;
	kr_cleanup_free char *text = NULL;
	size_t len;
	struct stat st;
	FILE *f;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(vmm, sizeof(vmm), "%s/fake-vmm", dir);
	snprintf(state, sizeof(state), "%s/state", dir);
	snprintf(args, sizeof(args), "%s/args", dir);
	snprintf(sock, sizeof(sock), "%s/vsock.sock", state);
	c.state_dir = state;

	/* No kata-vmm at the given path: a clear error, nothing made. */
	c.vmm = vmm;
	CHECK(hv_kvm_ops.create(&c, &vm, &err) < 0);
	CHECK_CONTAINS(err.msg, "fake-vmm");
	CHECK(stat(state, &st) != 0);

	f = fopen(vmm, "w");
	fprintf(f, "#!/bin/sh\nprintf '%%s\\n' \"$@\" > %s\n: > %s\nexec sleep 30\n", args, sock);
	fclose(f);
	chmod(vmm, 0755);
	kr_err_clear(&err);
	CHECK(hv_kvm_ops.create(&c, &vm, &err) == 0);
	CHECK(hv_kvm_ops.start(vm, &err) == 0);
	CHECK(hv_kvm_ops.pid(vm) > 0);
	CHECK(hv_kvm_ops.wait(vm, 50, &err) == 0);
	CHECK_CONTAINS(hv_kvm_ops.agent_socket(vm), "hvsock:");
	CHECK_CONTAINS(hv_kvm_ops.agent_socket(vm), "/state/vsock.sock:1024");
	CHECK(kr_read_file(args, 1 << 16, &text, &len, &err) == 0);
	CHECK_CONTAINS(text, "--vsock\n3,");
	CHECK_CONTAINS(text, "kata_run.agent.listen=vsock:1024");
	CHECK_CONTAINS(text, "reboot=k");
	CHECK_CONTAINS(text, "--initrd\n");
	CHECK_CONTAINS(text, "--rng\n");
	CHECK(hv_kvm_ops.destroy(vm, &err) == 0);
	CHECK(hv_kvm_ops.wait(vm, 0, &err) == 1);
	CHECK(hv_kvm_ops.pid(vm) == 0);
	CHECK(stat(state, &st) != 0);
	hv_kvm_ops.free(vm);

	/* A VMM that dies at once: start fails and says so. */
	f = fopen(vmm, "w");
	fprintf(f, "#!/bin/sh\necho 'no KVM here' >&2\nexit 1\n");
	fclose(f);
	CHECK(hv_kvm_ops.create(&c, &vm, &err) == 0);
	CHECK(hv_kvm_ops.start(vm, &err) < 0);
	CHECK_CONTAINS(err.msg, "kata-vmm exited");
	CHECK_CONTAINS(err.msg, "vmm.log");
	CHECK_CONTAINS(err.msg, "no KVM here");	/* the VMM's own words */
	CHECK(hv_kvm_ops.destroy(vm, &err) == 0);
	CHECK(stat(state, &st) != 0);
	hv_kvm_ops.free(vm);
	kr_rm_rf(dir, NULL);
}

static void test_escape(void)
{
	char *s = hv_xml_escape("a<b>&\"c'd");

	CHECK_STREQ(s, "a&lt;b&gt;&amp;&quot;c&apos;d");
	free(s);
	s = hv_xml_escape("");
	CHECK_STREQ(s, "");
	free(s);
}

static struct hv_domain_desc desc(enum hv_accel a)
{
	struct hv_domain_desc d = {
		.name = "kata-run-vm1", .accel = a, .vcpus = 2, .memory_mib = 768,
		.kernel = "/k/bzImage", .initrd = "/k/initrd.gz",
		.cmdline = "console=ttyS0 quiet", .agent_socket = "/run/x/agent.sock",
		.console_log = "/run/x/console.log", .shared_dir = "/share",
		.virtiofsd = "/usr/lib/qemu/virtiofsd",
	};
	return d;
}

static void test_xml_elements(void)
{
	struct kr_err err = { 0 };
	struct hv_domain_desc d = desc(HV_ACCEL_TCG);
	char *x = hv_libvirt_xml(&d, &err);

	REQUIRE(x);
	CHECK_CONTAINS(x, "<domain type='qemu'>");
	CHECK_CONTAINS(x, "<name>kata-run-vm1</name>");
	CHECK_CONTAINS(x, "<memory unit='MiB'>768</memory>");
	CHECK_CONTAINS(x, "<vcpu>2</vcpu>");
	CHECK_CONTAINS(x, "<source type='memfd'/>");
	CHECK_CONTAINS(x, "<access mode='shared'/>");
	CHECK_CONTAINS(x, "machine='q35'>hvm</type>");
	CHECK_CONTAINS(x, "<kernel>/k/bzImage</kernel>");
	CHECK_CONTAINS(x, "<initrd>/k/initrd.gz</initrd>");
	CHECK_CONTAINS(x, "<cmdline>console=ttyS0 quiet</cmdline>");
	CHECK_CONTAINS(x, "<on_poweroff>destroy</on_poweroff>");
	CHECK_CONTAINS(x, "<on_reboot>destroy</on_reboot>");
	CHECK_CONTAINS(x, "<on_crash>destroy</on_crash>");
	CHECK_CONTAINS(x, "<channel type='unix'>\n      <source mode='bind' path='/run/x/agent.sock'/>\n"
			  "      <target type='virtio' name='agent.channel.0'/>");
	CHECK_CONTAINS(x, "<filesystem type='mount' accessmode='passthrough'>");
	CHECK_CONTAINS(x, "<driver type='virtiofs'/>");
	CHECK_CONTAINS(x, "<binary path='/usr/lib/qemu/virtiofsd'>");
	CHECK_CONTAINS(x, "<source dir='/share'/>");
	CHECK_CONTAINS(x, "<target dir='kataShared'/>");
	CHECK_CONTAINS(x, "<serial type='file'>\n      <source path='/run/x/console.log'/>");
	CHECK_CONTAINS(x, "<memballoon model='none'/>");
	CHECK_CONTAINS(x, "<rng model='virtio'>");
	CHECK_CONTAINS(x, "<controller type='usb' model='none'/>");
	CHECK_CONTAINS(x, "<cpu mode='maximum'/>");
	CHECK(strstr(x, "<interface") == NULL);
	CHECK(strstr(x, "<graphics") == NULL);
	CHECK(strstr(x, "<video") == NULL);
	CHECK(strstr(x, "kvm") == NULL);
	free(x);

	d = desc(HV_ACCEL_KVM);
	x = hv_libvirt_xml(&d, &err);
	REQUIRE(x);
	CHECK_CONTAINS(x, "<domain type='kvm'>");
	CHECK_CONTAINS(x, "<cpu mode='host-passthrough'/>");
	free(x);

	/* No share, no initrd: neither element. */
	d = desc(HV_ACCEL_TCG);
	d.shared_dir = NULL;
	d.initrd = NULL;
	x = hv_libvirt_xml(&d, &err);
	REQUIRE(x);
	CHECK(strstr(x, "<filesystem") == NULL);
	CHECK(strstr(x, "<initrd>") == NULL);
	free(x);
}

static int count(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

static void test_xml_escaping(void)
{
	struct kr_err err = { 0 };
	struct hv_domain_desc d = desc(HV_ACCEL_TCG);
	char *x;

	d.kernel = "/k/<evil>&'\"";
	d.cmdline = "a=\"1\" b='2' </cmdline><devices>";
	d.shared_dir = "/s/'/><x";
	d.agent_socket = "/run/a'b.sock";
	d.console_log = "/run/l&g";
	d.virtiofsd = "/usr/bin/v<fsd";
	x = hv_libvirt_xml(&d, &err);
	REQUIRE(x);
	CHECK_CONTAINS(x, "<kernel>/k/&lt;evil&gt;&amp;&apos;&quot;</kernel>");
	CHECK_CONTAINS(x, "<cmdline>a=&quot;1&quot; b=&apos;2&apos; &lt;/cmdline&gt;&lt;devices&gt;</cmdline>");
	CHECK_CONTAINS(x, "<source dir='/s/&apos;/&gt;&lt;x'/>");
	CHECK_CONTAINS(x, "path='/run/a&apos;b.sock'");
	CHECK_CONTAINS(x, "path='/run/l&amp;g'");
	CHECK_CONTAINS(x, "<binary path='/usr/bin/v&lt;fsd'>");
	/* The injected markup did not make a second element. */
	CHECK(count(x, "<devices>") == 1);
	CHECK(count(x, "<cmdline>") == 1);
	CHECK(count(x, "<filesystem") == 1);
	CHECK(count(x, "<x") == 0);
	free(x);

	d = desc(HV_ACCEL_TCG);
	d.cmdline = "a\nb";
	x = hv_libvirt_xml(&d, &err);
	CHECK(x == NULL);
	CHECK_CONTAINS(err.msg, "cmdline contains a control character");
	d = desc(HV_ACCEL_TCG);
	d.kernel = "";
	CHECK(hv_libvirt_xml(&d, &err) == NULL);
	CHECK_CONTAINS(err.msg, "kernel is empty");
	d = desc(HV_ACCEL_AUTO);
	CHECK(hv_libvirt_xml(&d, &err) == NULL);
	CHECK_CONTAINS(err.msg, "accel");
}

static void test_mock(void)
{
	struct kr_err err = { 0 };
	const struct hv_ops *ops = hypervisor_open("mock", &err);
	struct hv_config c = { .id = "m1", .kernel = kernel };
	struct hv_vm *vm = NULL;

	REQUIRE(ops);
	hv_mock_reset();
	REQUIRE(ops->create(&c, &vm, &err) == 0);
	CHECK(hv_mock.calls[HV_MOCK_CREATE] == 1);
	CHECK(hv_mock.live_vms == 1);
	CHECK_STREQ(hv_mock.last_id, "m1");
	CHECK_STREQ(ops->agent_socket(vm), "/mock/m1/agent.sock");
	CHECK_STREQ(ops->console_log(vm), "/mock/m1/console.log");
	CHECK(ops->wait(vm, 0, &err) == 1);	/* never started: ended */
	CHECK(ops->start(vm, &err) == 0);
	CHECK(hv_mock.running);
	CHECK(ops->start(vm, &err) < 0);
	CHECK_CONTAINS(err.msg, "already started");
	CHECK(ops->wait(vm, 10, &err) == 0);
	hv_mock.exit_now = true;
	CHECK(ops->wait(vm, 10, &err) == 1);
	CHECK(!hv_mock.running);
	CHECK(ops->destroy(vm, &err) == 0);
	ops->free(vm);
	CHECK(hv_mock.live_vms == 0);
	CHECK(hv_mock.calls[HV_MOCK_START] == 2);
	CHECK(hv_mock.calls[HV_MOCK_WAIT] == 3);
	CHECK(hv_mock.calls[HV_MOCK_DESTROY] == 1);

	/* Simulated failures. */
	hv_mock_reset();
	hv_mock.fail_op = HV_MOCK_START;
	hv_mock.fail_errno = ENOSPC;
	REQUIRE(ops->create(&c, &vm, &err) == 0);
	CHECK(ops->start(vm, &err) < 0);
	CHECK_STREQ(err.msg, "mock: start failed (simulated): No space left on device");
	CHECK(err.errnum == ENOSPC);
	CHECK(!hv_mock.running);
	CHECK(ops->destroy(vm, &err) == 0);
	ops->free(vm);
	hv_mock.fail_op = HV_MOCK_CREATE;
	vm = NULL;
	CHECK(ops->create(&c, &vm, &err) < 0);
	CHECK(vm == NULL);
	CHECK(hv_mock.live_vms == 0);
	/* Every backend has every op. */
	const struct hv_ops *all[] = { &hv_mock_ops, &hv_libvirt_ops };
	for (size_t i = 0; i < KR_ARRAY_SIZE(all); i++)
		CHECKF(all[i]->create && all[i]->start && all[i]->wait && all[i]->destroy &&
		       all[i]->free && all[i]->cleanup && all[i]->agent_socket &&
		       all[i]->console_log && all[i]->state_dir && all[i]->name, "%zu", i);
	c.id = "../x";
	CHECK(ops->cleanup(&c, &err) < 0);
	c.id = "m1";
	CHECK(ops->cleanup(&c, &err) == 0);
	/* The mock validates like a real backend. */
	hv_mock_reset();
	c.kernel = "/nonexistent";
	CHECK(ops->create(&c, &vm, &err) < 0);
	CHECK_CONTAINS(err.msg, "kernel /nonexistent: No such file or directory");
}

static void test_libvirt_bad_input(void)
{
	/* Fails in create, before any connection or file is made. */
	struct kr_err err = { 0 };
	char sd[128];
	struct hv_config c = { .id = "lv1", .kernel = "/nonexistent/bzImage" };
	struct hv_vm *vm = NULL;
	struct stat st;

	snprintf(sd, sizeof(sd), "%s/state-lv1", tmp);
	c.state_dir = sd;
	CHECK(hv_libvirt_ops.create(&c, &vm, &err) < 0);
	CHECK_STREQ(err.msg, "libvirt: create VM lv1: kernel /nonexistent/bzImage: No such file or directory");
	CHECK(vm == NULL);
	CHECK(stat(sd, &st) < 0 && errno == ENOENT);
	/* An existing state dir means the id is in use. */
	c.kernel = kernel;
	mkdir(sd, 0700);
	CHECK(hv_libvirt_ops.create(&c, &vm, &err) < 0);
	CHECK_CONTAINS(err.msg, "already exists");
	rmdir(sd);
	/* create + destroy without start leaves nothing. */
	REQUIRE(hv_libvirt_ops.create(&c, &vm, &err) == 0);
	CHECK(stat(sd, &st) == 0);
	CHECK(hv_libvirt_ops.wait(vm, 0, &err) == 1);
	CHECK(hv_libvirt_ops.destroy(vm, &err) == 0);
	CHECK(hv_libvirt_ops.destroy(vm, &err) == 0);	/* idempotent */
	hv_libvirt_ops.free(vm);
	CHECK(stat(sd, &st) < 0 && errno == ENOENT);
	/* cleanup of an id that left nothing: no-op, no connection needed. */
	CHECK(hv_libvirt_ops.cleanup(&c, &err) == 0);
	CHECK(stat(sd, &st) < 0 && errno == ENOENT);
	c.id = "a/b";
	CHECK(hv_libvirt_ops.cleanup(&c, &err) < 0);
}

int main(void)
{
	kr_log_init("test_hypervisor", KR_LOG_ERROR, -1);
	setup();
	KR_TEST(test_open);
	KR_TEST(test_detect);
	KR_TEST(test_validate);
	KR_TEST(test_cmdline);
	KR_TEST(test_escape);
	KR_TEST(test_xml_elements);
	KR_TEST(test_xml_escaping);
	KR_TEST(test_mock);
	KR_TEST(test_libvirt_bad_input);
	KR_TEST(test_kvm_backend);
	kr_rm_rf(tmp, NULL);
	return kr_test_done();
}
