/* A minimal i8042 keyboard controller: enough for the guest to reboot (=
 * end the VM) and for Linux's i8042 driver to probe it quickly.
 * ../shared/specs/microvm.md section 2.9; the command set is Firecracker's
 * (devices/legacy/i8042.rs):
 *
 *   port 0x64 read    status: 0x10 "keyboard enabled", bit 0 when a byte
 *                     waits at 0x60, never bit 1 "input buffer full" (the
 *                     kernel polls for it to clear before writing 0xFE)
 *   port 0x64 write   0xFE CPU reset -> on_reset(); 0x20/0x60 read/write the
 *                     control byte, 0xD0/0xD1 read/write the output port
 *                     (the value follows at 0x60); 0xAA self-test -> 0x55
 *                     (an addition to Firecracker's set); others ignored
 *   port 0x60 read    the pending byte (0 if none)
 *   port 0x60 write   a command parameter, or a keyboard command: acked 0xFA
 *
 * The two ports are separate 1-port ranges (i8042_register): 0x61 is the
 * PC speaker / PIT gate port (KVM's in-kernel PIT handles it) and 0x62,
 * 0x63 belong to nothing, so they stay unclaimed instead of being part of
 * a 0x60..0x64 range.  Accesses wider than a byte read 0xff and are dropped
 * (Firecracker counts them as missed).
 *
 * Threads: vCPU threads; a mutex covers the state.  on_reset is called on
 * the vCPU thread that wrote 0xFE, without that lock: it may stop the VM. */
#ifndef KR_VMM_I8042_H
#define KR_VMM_I8042_H

#include <stdbool.h>
#include <stdint.h>

#include "kr/error.h"
#include "bus.h"

#define I8042_CMD_READ_CTR	0x20
#define I8042_CMD_WRITE_CTR	0x60
#define I8042_CMD_SELF_TEST	0xaa
#define I8042_CMD_READ_OUTP	0xd0
#define I8042_CMD_WRITE_OUTP	0xd1
#define I8042_CMD_RESET_CPU	0xfe

#define I8042_STATUS_OBF	0x01	/* a byte waits at port 0x60 */
#define I8042_STATUS_IBF	0x02	/* input buffer full: never set */
#define I8042_STATUS_CMD_DATA	0x08	/* expecting a command parameter */
#define I8042_STATUS_KBD_EN	0x10

#define I8042_CTR_KBD_INT	0x01
#define I8042_CTR_POST_OK	0x04

#define I8042_KBD_ACK		0xfa

struct i8042;

/* on_reset: called at every 0xFE (may be NULL).  kbd_irq_fd: eventfd for
 * IRQ 1, edges when a keyboard byte becomes readable and the guest enabled
 * the keyboard interrupt (-1: none). */
struct i8042 *i8042_new(void (*on_reset)(void *ctx), void *ctx, int kbd_irq_fd,
			struct kr_err *err);
void i8042_free(struct i8042 *k);

/* bus_rw_fns: port 0x60 (data) and port 0x64 (status/command), each a
 * 1-port range (offset 0). */
void i8042_data_rw(void *opaque, uint64_t offset, uint8_t *data, unsigned len,
		   bool is_write);
void i8042_cmd_rw(void *opaque, uint64_t offset, uint8_t *data, unsigned len,
		  bool is_write);

/* Register both ports (LAYOUT_I8042_DATA, LAYOUT_I8042_CMD) on the PIO
 * bus. */
int i8042_register(struct i8042 *k, struct bus *pio, struct kr_err *err);

/* Queue the scan codes of Ctrl-Alt-Del (set 2, as Firecracker's
 * SendCtrlAltDel) and raise IRQ 1: a guest with a keyboard driver reboots,
 * which with reboot=k arrives back here as 0xFE.  -1 if the 16-byte buffer
 * has no room for the sequence. */
int i8042_ctrl_alt_del(struct i8042 *k);

#endif
