# SPDX-License-Identifier: GPL-2.0
# kha-xdp: build, test, bench, demo, install.
#
# Layout is discovered, not listed: every bpf/*.bpf.c becomes an object and a
# skeleton, every user/*.c but main.c goes into libkha.a, every
# tests/test_*.c is a CUnit test binary, every vmtests/[0-9]*.sh a case.

CC      ?= gcc
CLANG   ?= clang
BPFTOOL ?= bpftool
PREFIX  ?= /usr/local
O       := build

ARCH    := $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')
MULTI   := $(shell $(CC) -print-multiarch 2>/dev/null)

DEPS_OK := $(shell pkg-config --exists libbpf libnl-route-3.0 openssl 2>/dev/null && \
		command -v $(BPFTOOL) >/dev/null && command -v $(CLANG) >/dev/null && \
		test -f /usr/include/CUnit/CUnit.h && echo yes)
ifneq ($(DEPS_OK),yes)
$(info kha-xdp: build dependencies missing, running scripts/install-deps.sh)
$(shell ./scripts/install-deps.sh >&2)
endif

PKGS    := libbpf libnl-route-3.0 libnl-3.0 openssl
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter \
	   -D_GNU_SOURCE -I$(O)/skel -Iheaders -Iuser \
	   $(shell pkg-config --cflags $(PKGS))
LDLIBS  += $(shell pkg-config --libs $(PKGS)) -lelf -lz

BPF_CFLAGS := -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_$(ARCH) -Wall -Werror \
	      -Iheaders -Ibpf -I/usr/include/$(MULTI) $(EXTRA_BPF_CFLAGS)

BPF_SRCS  := $(wildcard bpf/*.bpf.c)
BPF_OBJS  := $(patsubst bpf/%.bpf.c,$(O)/bpf/%.bpf.o,$(BPF_SRCS))
SKELS     := $(patsubst bpf/%.bpf.c,$(O)/skel/%.skel.h,$(BPF_SRCS))
BPF_HDRS  := $(wildcard bpf/*.h) $(wildcard headers/*.h)

LIB_SRCS  := $(filter-out user/main.c,$(wildcard user/*.c))
LIB_OBJS  := $(patsubst user/%.c,$(O)/user/%.o,$(LIB_SRCS))
USER_HDRS := $(wildcard user/*.h) $(wildcard headers/*.h)

TEST_SRCS := $(wildcard tests/test_*.c)
TESTS     := $(patsubst tests/%.c,$(O)/tests/%,$(TEST_SRCS))
TEST_HDRS := $(wildcard tests/*.h)

.PHONY: all test unit-test vmtest bench demo install uninstall clean deps fmt
BENCH     := $(if $(wildcard tests/bench.c),$(O)/tests/bench)
# Lab tools for vmtests/ and the demo: tests/tools/*.c built like the tests,
# tests/tools/*.bpf.c (the bridge ports' XDP_PASS) like the BPF objects.
TOOL_SRCS := $(filter-out %.bpf.c,$(wildcard tests/tools/*.c))
TOOLS     := $(patsubst tests/%.c,$(O)/tests/%,$(TOOL_SRCS)) \
	     $(patsubst tests/%.bpf.c,$(O)/tests/%.bpf.o,$(wildcard tests/tools/*.bpf.c))
all: $(O)/kha-xdp $(TESTS) $(BENCH) $(TOOLS)

$(O)/tests/tools/%.bpf.o: tests/tools/%.bpf.c
	@mkdir -p $(@D)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

deps:
	./scripts/install-deps.sh

$(O)/bpf/%.bpf.o: bpf/%.bpf.c $(BPF_HDRS)
	@mkdir -p $(@D)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(O)/skel/%.skel.h: $(O)/bpf/%.bpf.o
	@mkdir -p $(@D)
	$(BPFTOOL) gen skeleton $< name $(subst -,_,$*) > $@.tmp && mv $@.tmp $@

$(O)/user/%.o: user/%.c $(USER_HDRS) $(SKELS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c $< -o $@

$(O)/libkha.a: $(LIB_OBJS)
	$(AR) rcs $@ $^

$(O)/kha-xdp: $(O)/user/main.o $(O)/libkha.a
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

$(O)/tests/%: tests/%.c $(O)/libkha.a $(TEST_HDRS) $(USER_HDRS) $(SKELS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Itests $< $(O)/libkha.a -o $@ $(LDLIBS) -lcunit -lm

$(O)/tests/bench: tests/bench.c $(O)/libkha.a $(TEST_HDRS) $(SKELS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Itests $< $(O)/libkha.a -o $@ $(LDLIBS) -lm

# Every layer; the last line is the summary CI looks for.
test: all
	@./tests/run-all.sh

unit-test: all
	@./tests/run-all.sh --unit

vmtest: all
	@./tests/run-all.sh --vm

bench: all
	@./scripts/bench.sh

demo: all
	@./scripts/demo.sh

install: all
	install -D -m 0755 $(O)/kha-xdp $(DESTDIR)$(PREFIX)/sbin/kha-xdp
	@mkdir -p $(DESTDIR)/etc/systemd/system
	sed 's|/usr/local|$(PREFIX)|g' scripts/kha-xdp.service > $(DESTDIR)/etc/systemd/system/kha-xdp.service
	chmod 0644 $(DESTDIR)/etc/systemd/system/kha-xdp.service
	install -d -m 0755 $(DESTDIR)$(PREFIX)/share/doc/kha-xdp
	install -m 0644 docs/*.md docs/kha-xdp.conf.example $(DESTDIR)$(PREFIX)/share/doc/kha-xdp/
	test -e $(DESTDIR)/etc/kha-xdp/kha-xdp.conf || \
		install -D -m 0644 docs/kha-xdp.conf.example $(DESTDIR)/etc/kha-xdp/kha-xdp.conf

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/sbin/kha-xdp $(DESTDIR)/etc/systemd/system/kha-xdp.service
	rm -rf $(DESTDIR)$(PREFIX)/share/doc/kha-xdp

fmt:
	clang-format -i bpf/*.c bpf/*.h user/*.c user/*.h headers/*.h tests/*.c

clean:
	rm -rf $(O)

.SECONDARY:
