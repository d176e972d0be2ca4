/* A mock backend for unit tests: records calls and can fail on demand
 * (hv_mock.fail_op / fail_errno).  It creates no processes and no files. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hypervisor.h"
#include "kr/util.h"

struct hv_mock_state hv_mock = { .fail_op = -1 };

struct mock_vm {
	char id[HV_ID_MAX + 1];
	char sock[128], log[128], dir[128];
	bool started, destroyed;
};

void hv_mock_reset(void)
{
	memset(&hv_mock, 0, sizeof(hv_mock));
	hv_mock.fail_op = -1;
}

static int mock_fail(enum hv_mock_op op, const char *what, struct kr_err *err)
{
	hv_mock.calls[op]++;
	if (hv_mock.fail_op == (int)op)
		return kr_err_errno(err, hv_mock.fail_errno ? hv_mock.fail_errno : EIO,
				    "mock: %s failed (simulated)", what);
	return 0;
}

static int mock_create(const struct hv_config *cfg, struct hv_vm **out, struct kr_err *err)
{
	struct mock_vm *vm;

	if (mock_fail(HV_MOCK_CREATE, "create", err) < 0)
		return -1;
	if (hv_config_validate(cfg, err) < 0)
		return kr_err_wrap(err, "mock: create VM %.64s", cfg && cfg->id ? cfg->id : "");
	vm = kr_xcalloc(1, sizeof(*vm));
	snprintf(vm->id, sizeof(vm->id), "%s", cfg->id);
	snprintf(vm->dir, sizeof(vm->dir), "/mock/%s", cfg->id);
	snprintf(vm->sock, sizeof(vm->sock), "/mock/%s/agent.sock", cfg->id);
	snprintf(vm->log, sizeof(vm->log), "/mock/%s/console.log", cfg->id);
	snprintf(hv_mock.last_id, sizeof(hv_mock.last_id), "%s", cfg->id);
	hv_mock.live_vms++;
	*out = (struct hv_vm *)vm;
	return 0;
}

static int mock_start(struct hv_vm *v, struct kr_err *err)
{
	struct mock_vm *vm = (struct mock_vm *)v;

	if (mock_fail(HV_MOCK_START, "start", err) < 0)
		return -1;
	if (vm->started)
		return kr_err_set(err, KR_FAILED_PRECONDITION, "mock: VM %s already started", vm->id);
	vm->started = true;
	hv_mock.running = true;
	return 0;
}

static int mock_wait(struct hv_vm *v, unsigned timeout_ms, struct kr_err *err)
{
	struct mock_vm *vm = (struct mock_vm *)v;

	if (mock_fail(HV_MOCK_WAIT, "wait", err) < 0)
		return -1;
	if (!vm->started || vm->destroyed || hv_mock.exit_now) {
		hv_mock.running = false;
		return 1;
	}
	return 0;
}

static int mock_destroy(struct hv_vm *v, struct kr_err *err)
{
	struct mock_vm *vm = (struct mock_vm *)v;

	if (mock_fail(HV_MOCK_DESTROY, "destroy", err) < 0)
		return -1;
	vm->destroyed = true;
	hv_mock.running = false;
	return 0;
}

static void mock_free(struct hv_vm *v)
{
	if (!v)
		return;
	hv_mock.live_vms--;
	free(v);
}

static int mock_cleanup(const struct hv_config *cfg, struct kr_err *err)
{
	return hv_id_valid(cfg ? cfg->id : NULL) ? 0
		: kr_err_set(err, KR_INVALID_ARGUMENT, "mock: cleanup: invalid VM id");
}

static const char *mock_sock(const struct hv_vm *v) { return ((const struct mock_vm *)v)->sock; }
static const char *mock_log(const struct hv_vm *v) { return ((const struct mock_vm *)v)->log; }
static const char *mock_dir(const struct hv_vm *v) { return ((const struct mock_vm *)v)->dir; }
/* No VM process: this one stands in for it while "running". */
static int mock_pid(const struct hv_vm *v) { (void)v; return hv_mock.running ? (int)getpid() : 0; }

const struct hv_ops hv_mock_ops = {
	.name = "mock",
	.create = mock_create,
	.start = mock_start,
	.wait = mock_wait,
	.destroy = mock_destroy,
	.free = mock_free,
	.cleanup = mock_cleanup,
	.agent_socket = mock_sock,
	.console_log = mock_log,
	.state_dir = mock_dir,
	.pid = mock_pid,
};
