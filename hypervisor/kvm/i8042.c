/* Minimal i8042 (i8042.h). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "i8042.h"
#include "layout.h"

#define BUF_SIZE 16u

/* Ctrl, Alt, Del (extended) make codes, scan code set 2. */
static const uint8_t ctrl_alt_del[] = { 0x14, 0x11, 0xe0, 0x71 };

struct i8042 {
	pthread_mutex_t lock;
	void (*on_reset)(void *ctx);
	void *ctx;
	int kbd_irq_fd;

	uint8_t status, control, outp;
	uint8_t cmd;		/* command waiting for its parameter */
	uint8_t buf[BUF_SIZE];	/* bytes the guest reads at 0x60 */
	unsigned head, count;
};

static void kbd_irq(struct i8042 *k)
{
	uint64_t one = 1;

	if (k->kbd_irq_fd < 0 || !(k->control & I8042_CTR_KBD_INT))
		return;
	if (write(k->kbd_irq_fd, &one, sizeof(one)) < 0) {
		/* Saturated counter: an interrupt is pending anyway. */
	}
}

static bool push(struct i8042 *k, uint8_t b)
{
	if (k->count == BUF_SIZE)
		return false;
	k->buf[(k->head + k->count) % BUF_SIZE] = b;
	k->count++;
	k->status |= I8042_STATUS_OBF;
	return true;
}

static uint8_t pop(struct i8042 *k)
{
	uint8_t b;

	if (!k->count)
		return 0;
	b = k->buf[k->head];
	k->head = (k->head + 1) % BUF_SIZE;
	if (!--k->count)
		k->status &= ~I8042_STATUS_OBF;
	return b;
}

/* A controller command's reply replaces whatever was pending, so that the
 * next read of 0x60 returns exactly that reply. */
static void flush(struct i8042 *k)
{
	k->head = k->count = 0;
	k->status &= ~I8042_STATUS_OBF;
}

static void reply(struct i8042 *k, uint8_t b)
{
	flush(k);
	push(k, b);
}

static void expect_param(struct i8042 *k, uint8_t cmd)
{
	k->status |= I8042_STATUS_CMD_DATA;
	k->cmd = cmd;
}

/* Returns true for a CPU reset. */
static bool write_cmd(struct i8042 *k, uint8_t v)
{
	switch (v) {
	case I8042_CMD_RESET_CPU:
		return true;
	case I8042_CMD_READ_CTR:
		reply(k, k->control);
		break;
	case I8042_CMD_WRITE_CTR:
		flush(k);
		expect_param(k, v);
		break;
	case I8042_CMD_READ_OUTP:
		reply(k, k->outp);
		break;
	case I8042_CMD_WRITE_OUTP:
		expect_param(k, v);
		break;
	case I8042_CMD_SELF_TEST:
		reply(k, 0x55);
		break;
	default:
		break;		/* AUX port, A20, LEDs...: nothing to emulate */
	}
	return false;
}

static void write_data(struct i8042 *k, uint8_t v)
{
	if (k->status & I8042_STATUS_CMD_DATA) {
		if (k->cmd == I8042_CMD_WRITE_CTR)
			k->control = v;
		else if (k->cmd == I8042_CMD_WRITE_OUTP)
			k->outp = v;
		k->status &= ~I8042_STATUS_CMD_DATA;
		return;
	}
	/* A command for the keyboard itself: a dumb keyboard acks all. */
	reply(k, I8042_KBD_ACK);
	kbd_irq(k);
}

static uint8_t read_data(struct i8042 *k)
{
	uint8_t b = pop(k);

	/* More bytes waiting (a multi-byte scan code): one edge each. */
	if (k->count)
		kbd_irq(k);
	return b;
}

void i8042_data_rw(void *opaque, uint64_t offset, uint8_t *data, unsigned len,
		   bool is_write)
{
	struct i8042 *k = opaque;

	if (len != 1 || offset != 0) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	pthread_mutex_lock(&k->lock);
	if (is_write)
		write_data(k, data[0]);
	else
		data[0] = read_data(k);
	pthread_mutex_unlock(&k->lock);
}

void i8042_cmd_rw(void *opaque, uint64_t offset, uint8_t *data, unsigned len,
		  bool is_write)
{
	struct i8042 *k = opaque;
	bool reset = false;

	if (len != 1 || offset != 0) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	pthread_mutex_lock(&k->lock);
	if (is_write)
		reset = write_cmd(k, data[0]);
	else
		data[0] = k->status;
	pthread_mutex_unlock(&k->lock);
	if (reset && k->on_reset)
		k->on_reset(k->ctx);
}

int i8042_register(struct i8042 *k, struct bus *pio, struct kr_err *err)
{
	if (bus_register(pio, LAYOUT_I8042_DATA, 1, i8042_data_rw, k,
			 "i8042 data", err) < 0)
		return -1;
	return bus_register(pio, LAYOUT_I8042_CMD, 1, i8042_cmd_rw, k,
			    "i8042 command", err);
}

int i8042_ctrl_alt_del(struct i8042 *k)
{
	int rc = -1;

	pthread_mutex_lock(&k->lock);
	if (BUF_SIZE - k->count >= sizeof(ctrl_alt_del)) {
		for (unsigned i = 0; i < sizeof(ctrl_alt_del); i++)
			push(k, ctrl_alt_del[i]);
		kbd_irq(k);
		rc = 0;
	}
	pthread_mutex_unlock(&k->lock);
	return rc;
}

struct i8042 *i8042_new(void (*on_reset)(void *ctx), void *ctx, int kbd_irq_fd,
			struct kr_err *err)
{
	struct i8042 *k = calloc(1, sizeof(*k));

	if (!k) {
		kr_err_set(err, KR_RESOURCE_EXHAUSTED, "i8042: out of memory");
		return NULL;
	}
	pthread_mutex_init(&k->lock, NULL);
	k->on_reset = on_reset;
	k->ctx = ctx;
	k->kbd_irq_fd = kbd_irq_fd;
	/* Firecracker's power-on state. */
	k->status = I8042_STATUS_KBD_EN;
	k->control = I8042_CTR_POST_OK | I8042_CTR_KBD_INT;
	return k;
}

void i8042_free(struct i8042 *k)
{
	if (!k)
		return;
	pthread_mutex_destroy(&k->lock);
	free(k);
}
