# The freestanding test guest (tests/guest/README.md): a static x86-64 ELF
# loaded at 1 MiB with a Linux 64-bit entry (e_entry) and a PVH entry (Xen
# ELF note).  Included by the top Makefile; never sanitized, always -Werror.
TESTGUEST := $(BUILD)/tests/testguest.elf
TESTGUEST_SRCS := $(wildcard tests/guest/*.c) $(wildcard tests/guest/*.S)
TESTGUEST_OBJS := $(patsubst tests/guest/%,$(BUILD)/tests/guest/%.o,$(TESTGUEST_SRCS))
TESTGUEST_CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror -Wshadow \
	-Wstrict-prototypes -Wmissing-prototypes \
	-ffreestanding -fno-builtin -nostdlib -static -fno-pic -fno-pie \
	-mno-red-zone -mgeneral-regs-only -mcmodel=small \
	-fno-stack-protector -fno-asynchronous-unwind-tables -fcf-protection=none \
	-fno-tree-loop-distribute-patterns -fno-strict-aliasing \
	-Itests/guest -Ihypervisor/kvm -MMD -MP
TESTGUEST_LDFLAGS := -nostdlib -static -no-pie -Wl,--build-id=none \
	-Wl,-z,noexecstack -Wl,-z,max-page-size=4096 -Wl,--fatal-warnings \
	-Wl,-T,tests/guest/guest.ld

all: $(TESTGUEST)

$(TESTGUEST): $(TESTGUEST_OBJS) tests/guest/guest.ld
	@mkdir -p $(dir $@)
	gcc $(TESTGUEST_CFLAGS) $(TESTGUEST_LDFLAGS) -o $@ $(TESTGUEST_OBJS)

# gcc, not $(CC): the guest is never built with the sanitizer or clang
# flags of the host objects.
$(BUILD)/tests/guest/%.c.o: tests/guest/%.c
	@mkdir -p $(dir $@)
	gcc $(TESTGUEST_CFLAGS) -c $< -o $@
$(BUILD)/tests/guest/%.S.o: tests/guest/%.S
	@mkdir -p $(dir $@)
	gcc $(TESTGUEST_CFLAGS) -c $< -o $@
