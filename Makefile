# kata-run build.  `make` builds everything into build/; `make SANITIZE=1`
# builds an AddressSanitizer+UBSan tree into build-asan/; `make test` runs
# the whole suite (tests/run.sh).  See README.md.

CC ?= gcc
SANITIZE ?=
ifeq ($(SANITIZE),)
BUILD ?= build
else
BUILD ?= build-asan
endif

VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
GEN := $(BUILD)/gen

CPPFLAGS += -D_GNU_SOURCE -Iinclude -Iagent -Ishim/core -I$(GEN) -DKR_VERSION=\"$(VERSION)\"
# Debian's libprotobuf-nanopb.a is built with PB_ENABLE_MALLOC; headers must match.
CPPFLAGS += -DPB_ENABLE_MALLOC=1
CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Wshadow \
	  -Wformat=2 -Wstrict-prototypes -fno-strict-aliasing -pthread -MMD -MP
ifneq ($(WERROR),)
CFLAGS += -Werror
endif
ifneq ($(SANITIZE),)
CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
# ASan cannot link statically: the sanitized agent is dynamic.
AGENT_STATIC :=
else
AGENT_STATIC := -static
endif
LDFLAGS += -pthread

# ---- sources ---------------------------------------------------------------
LIB_SRCS := $(wildcard lib/*.c)
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
CLIENT_SRCS := $(wildcard lib/client/*.c)
CLIENT_OBJS := $(CLIENT_SRCS:%.c=$(BUILD)/%.o) $(GEN)/agent.pb-c.o
AGENT_SRCS := $(filter-out agent/main.c,$(wildcard agent/*.c))
AGENT_OBJS := $(AGENT_SRCS:%.c=$(BUILD)/%.o) $(GEN)/agent.pb.o
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
INTEG_SRCS := $(wildcard tests/integration/test_*.c)
INTEG_BINS := $(INTEG_SRCS:tests/integration/%.c=$(BUILD)/tests/%)
TOOL_SRCS := $(wildcard tests/tools/*.c)
TOOL_BINS := $(TOOL_SRCS:tests/tools/%.c=$(BUILD)/tests/%)

LIBKR := $(BUILD)/libkr.a
LIBCLIENT := $(BUILD)/libkr-agentclient.a
LIBAGENT := $(BUILD)/libkr-agent.a

AGENT_LIBS := -lseccomp -ljson-c -lprotobuf-nanopb
HOST_LIBS := -lprotobuf-c -ljson-c

BINS := $(BUILD)/kata-agent $(BUILD)/kr-agent-ctl

# hypervisor/ (libvirt backend needs libvirt-dev): backends in libkr-hv.a,
# the test driver kr-vmctl.
HV_SRCS := $(filter-out hypervisor/vmctl.c,$(wildcard hypervisor/*.c))
HV_OBJS := $(HV_SRCS:%.c=$(BUILD)/%.o)
LIBHV := $(BUILD)/libkr-hv.a
HV_LIBS := -lvirt
BINS += $(BUILD)/kr-vmctl

# shim/: the runtime core (libkr-runtime.a) under the kata-run CLI (and,
# later, the containerd shim).
RUNTIME_SRCS := $(wildcard shim/core/*.c)
RUNTIME_OBJS := $(RUNTIME_SRCS:%.c=$(BUILD)/%.o)
LIBRUNTIME := $(BUILD)/libkr-runtime.a
CLI_SRCS := $(wildcard shim/cli/*.c)
CLI_OBJS := $(CLI_SRCS:%.c=$(BUILD)/%.o)
BINS += $(BUILD)/kata-run
# The containerd shim v2 (shim/containerd/), its protobuf-c messages from
# proto/containerd.proto.
SHIM_SRCS := $(wildcard shim/containerd/*.c)
SHIM_OBJS := $(SHIM_SRCS:%.c=$(BUILD)/%.o) $(GEN)/containerd.pb-c.o
BINS += $(BUILD)/containerd-shim-kata-run-v2

.PHONY: all test unit fuzz bench clean install initramfs guest-kernel
all: $(BINS) $(UNIT_BINS) $(INTEG_BINS) $(TOOL_BINS)

# ---- generated protobuf code ----------------------------------------------
$(GEN)/agent.pb.c $(GEN)/agent.pb.h: proto/agent.proto proto/agent.options
	@mkdir -p $(GEN)
	nanopb_generator.py -q -I proto -f proto/agent.options -D $(GEN) proto/agent.proto
$(GEN)/agent.pb-c.c $(GEN)/agent.pb-c.h: proto/agent.proto
	@mkdir -p $(GEN)
	protoc-c --c_out=$(GEN) -Iproto proto/agent.proto
$(GEN)/containerd.pb-c.c $(GEN)/containerd.pb-c.h: proto/containerd.proto
	@mkdir -p $(GEN)
	protoc-c --c_out=$(GEN) -Iproto proto/containerd.proto
# Every object may include generated headers: generate them first.
GEN_HDRS := $(GEN)/agent.pb.h $(GEN)/agent.pb-c.h $(GEN)/containerd.pb-c.h

$(BUILD)/%.o: %.c | $(GEN_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@
$(GEN)/%.o: $(GEN)/%.c
	$(CC) $(CPPFLAGS) $(CFLAGS) -Wno-shadow -c $< -o $@

# ---- libraries and programs ------------------------------------------------
$(LIBKR): $(LIB_OBJS)
	@rm -f $@; ar rcs $@ $^
$(LIBCLIENT): $(CLIENT_OBJS)
	@rm -f $@; ar rcs $@ $^
$(LIBAGENT): $(AGENT_OBJS)
	@rm -f $@; ar rcs $@ $^

$(LIBHV): $(HV_OBJS)
	@rm -f $@; ar rcs $@ $^
$(BUILD)/kr-vmctl: $(BUILD)/hypervisor/vmctl.o $(LIBHV) $(LIBKR)
	$(CC) $(LDFLAGS) -o $@ $^ $(HV_LIBS)
$(BUILD)/tests/test_hypervisor: $(BUILD)/tests/unit/test_hypervisor.o $(LIBHV) $(LIBKR)
	$(CC) $(LDFLAGS) -o $@ $^ $(HV_LIBS)

# hypervisor/kvm/: the built-in VMM (issue 4), the kata-vmm program: its
# parts in libkr-vmm.a (unit-tested and fuzzed one by one), main.c on top.
# Unit tests named test_vmm_* (and test_virtqueue) link against it.
VMM_SRCS := $(filter-out hypervisor/kvm/main.c,$(wildcard hypervisor/kvm/*.c))
VMM_OBJS := $(VMM_SRCS:%.c=$(BUILD)/%.o)
LIBVMM := $(BUILD)/libkr-vmm.a
VMM_LIBS := -lseccomp
all: $(BUILD)/kata-vmm
$(LIBVMM): $(VMM_OBJS)
	@rm -f $@; ar rcs $@ $^
$(BUILD)/kata-vmm: $(BUILD)/hypervisor/kvm/main.o $(LIBVMM) $(LIBKR)
	$(CC) $(LDFLAGS) -o $@ $^ $(VMM_LIBS)
VMM_TESTS := $(filter $(BUILD)/tests/test_vmm_% $(BUILD)/tests/test_virtqueue,$(UNIT_BINS))
$(VMM_TESTS:$(BUILD)/tests/%=$(BUILD)/tests/unit/%.o): CPPFLAGS += -Ihypervisor/kvm
$(VMM_TESTS): $(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(LIBVMM) $(LIBKR)
	$(CC) $(LDFLAGS) -o $@ $^ $(VMM_LIBS)

$(LIBRUNTIME): $(RUNTIME_OBJS)
	@rm -f $@; ar rcs $@ $^
$(BUILD)/kata-run: $(CLI_OBJS) $(LIBRUNTIME) $(LIBHV) $(LIBCLIENT) $(LIBKR)
	$(CC) $(LDFLAGS) -o $@ $^ $(HV_LIBS) $(HOST_LIBS)
$(BUILD)/containerd-shim-kata-run-v2: $(SHIM_OBJS) $(LIBRUNTIME) $(LIBHV) $(LIBCLIENT) $(LIBKR)
	$(CC) $(LDFLAGS) -o $@ $^ $(HV_LIBS) $(HOST_LIBS)
$(BUILD)/tests/test_shim: $(BUILD)/tests/unit/test_shim.o $(filter-out %/main.o,$(SHIM_OBJS)) $(LIBRUNTIME) $(LIBHV) $(LIBCLIENT) $(LIBKR)
	$(CC) $(LDFLAGS) -o $@ $^ $(HV_LIBS) $(HOST_LIBS)
$(BUILD)/tests/test_config: $(BUILD)/tests/unit/test_config.o $(LIBRUNTIME) $(LIBHV) $(LIBCLIENT) $(LIBKR)
	$(CC) $(LDFLAGS) -o $@ $^ $(HV_LIBS) $(HOST_LIBS)

$(BUILD)/kata-agent: $(BUILD)/agent/main.o $(LIBAGENT) $(LIBKR)
	$(CC) $(LDFLAGS) $(AGENT_STATIC) -o $@ $^ $(AGENT_LIBS)

$(BUILD)/kr-agent-ctl: $(BUILD)/tools/agent-ctl.o $(LIBCLIENT) $(LIBKR)
	$(CC) $(LDFLAGS) -o $@ $^ $(HOST_LIBS)

# Unit tests link everything they might need; archives pull only what is used.
$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(LIBAGENT) $(LIBCLIENT) $(LIBKR)
	$(CC) $(LDFLAGS) -o $@ $^ $(AGENT_LIBS) $(HOST_LIBS)
$(BUILD)/tests/test_%: $(BUILD)/tests/integration/test_%.o $(BUILD)/tests/lib/agent_harness.o $(LIBCLIENT) $(LIBKR)
	$(CC) $(LDFLAGS) -o $@ $^ $(HOST_LIBS)
# Test helper programs run inside containers: static and never sanitized
# (a sanitizer runtime cannot link statically).
$(BUILD)/tests/%: tests/tools/%.c
	@mkdir -p $(dir $@)
	$(CC) -D_GNU_SOURCE -std=gnu11 -O2 -Wall -Wextra -Wno-unused-parameter $(if $(WERROR),-Werror) -static -o $@ $<

# The freestanding test guest the VMM tests boot (tests/guest/).
-include tests/guest/guest.mk

# Guest kernel: built and cached outside the tree, keyed by a hash of its
# inputs (guest-kernel-config/README.md).  Tests ask build.sh for the path.
# $(BUILD)/bzImage links to the cached kernel: kata-run run from the build
# tree finds it next to itself (shim/core/config.h).
guest-kernel:
	@mkdir -p $(BUILD)
	ln -sfn "$$(guest-kernel-config/build.sh --print-path)" $(BUILD)/bzImage

# The guest initramfs: the static agent as /init (rootfs-builder/).
initramfs: $(BUILD)/kata-initramfs.cpio.gz
$(BUILD)/kata-initramfs.cpio.gz: $(BUILD)/kata-agent rootfs-builder/build.sh
	rootfs-builder/build.sh $< $@

unit: $(UNIT_BINS)
	@fail=0; for t in $(UNIT_BINS); do echo "# $$t"; $$t || fail=1; done; exit $$fail

test: all
	tests/run.sh

# libFuzzer targets (clang): build/fuzz/fuzz_*
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
fuzz: $(GEN_HDRS)
	@mkdir -p $(BUILD)/fuzz
	for f in $(FUZZ_SRCS); do \
	  n=$$(basename $$f .c); \
	  clang $(CPPFLAGS) -Ihypervisor/kvm -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined \
	    -o $(BUILD)/fuzz/$$n $$f $(LIB_SRCS) $(AGENT_SRCS) $(VMM_SRCS) $(GEN)/agent.pb.c \
	    $(AGENT_LIBS) -pthread || exit 1; \
	done

# make install [PREFIX=/usr/local]: kata-run in PREFIX/bin, the guest kernel
# and initramfs in PREFIX/share/kata-run (where kata-run looks for them).
PREFIX ?= /usr/local
install: $(BUILD)/kata-run $(BUILD)/containerd-shim-kata-run-v2 $(BUILD)/kata-vmm $(BUILD)/kata-initramfs.cpio.gz
	install -D -m 0755 $(BUILD)/kata-run $(DESTDIR)$(PREFIX)/bin/kata-run
	install -D -m 0755 $(BUILD)/containerd-shim-kata-run-v2 $(DESTDIR)$(PREFIX)/bin/containerd-shim-kata-run-v2
	install -D -m 0755 $(BUILD)/kata-vmm $(DESTDIR)$(PREFIX)/bin/kata-vmm
	install -D -m 0644 $(BUILD)/kata-initramfs.cpio.gz $(DESTDIR)$(PREFIX)/share/kata-run/kata-initramfs.cpio.gz
	install -D -m 0644 "$$(guest-kernel-config/build.sh --print-path)" $(DESTDIR)$(PREFIX)/share/kata-run/bzImage

clean:
	rm -rf build build-asan

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
