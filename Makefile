# sockit — build, test, demo, bench, install, clean.
#
# `make`        builds sockit/core.so (warnings are errors)
# `make test`   installs missing Debian packages (as root), builds, runs the specs
# `make demo`   installs missing packages, builds, runs every example end to end
# `make repl`   lua5.4 with sockit on the path
# `make install` luarocks make into the default (or LUAROCKS_TREE) tree

LUA        ?= lua5.4
LUA_INC    ?= $(shell pkg-config --cflags lua5.4 2>/dev/null || echo -I/usr/include/lua5.4)
CC         ?= cc
OPT        ?= -O2
CFLAGS     ?= $(OPT) -g
WARN        = -Wall -Wextra -Wshadow -Wmissing-prototypes -Wstrict-prototypes \
              -Wpointer-arith -Wcast-qual -Wformat=2 -Werror
ALL_CFLAGS  = -std=gnu11 -fPIC -pthread $(WARN) $(LUA_INC) $(CFLAGS)
# -pthread (ALL_CFLAGS, the link of $(CORE)): src/resolve.c's worker threads
LDFLAGS    ?=
SRCS        = $(wildcard src/*.c)
HDRS        = $(wildcard src/*.h)
OBJS        = $(patsubst src/%.c,build/%.o,$(SRCS))
CORE        = sockit/core.so
# the same core with the poll(2) backend instead of epoll, for the specs
POLLCORE    = build/poll/sockit/core.so
# the same core with fault injection compiled in (src/faults.c), for the specs
FAULTCORE   = build/faults/sockit/core.so
# and with the poll(2) backend too: the event loop's waits are then
# level-triggered, so an injected EAGAIN can be retried inside the loop
FAULTPOLLCORE = build/faults-poll/sockit/core.so

export LUA_PATH  := $(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;$(CURDIR)/spec/?.lua;;
export LUA_CPATH := $(CURDIR)/?.so;;

.PHONY: all test demo repl install bench clean deps lint sanitize valgrind fuzz

all: $(CORE)

build/%.o: src/%.c $(HDRS) | build
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

build:
	@mkdir -p build

$(CORE): $(OBJS)
	@mkdir -p sockit
	$(CC) -shared -pthread $(LDFLAGS) -o $@ $(OBJS)

$(POLLCORE): $(SRCS) $(HDRS)
	@mkdir -p build/poll/sockit
	$(CC) $(ALL_CFLAGS) -DSOCKIT_USE_POLL -shared -o $@ $(SRCS)

$(FAULTCORE): $(SRCS) $(HDRS)
	@mkdir -p build/faults/sockit
	$(CC) $(ALL_CFLAGS) -DSOCKIT_FAULTS -shared -o $@ $(SRCS)

$(FAULTPOLLCORE): $(SRCS) $(HDRS)
	@mkdir -p build/faults-poll/sockit
	$(CC) $(ALL_CFLAGS) -DSOCKIT_FAULTS -DSOCKIT_USE_POLL -shared -o $@ $(SRCS)

# the core with AddressSanitizer and UBSan, for make sanitize
SANCORE     = build/sanitize/sockit/core.so
SANFLAGS    = -fsanitize=address,undefined -fno-sanitize-recover=undefined \
              -fno-omit-frame-pointer
$(SANCORE): $(SRCS) $(HDRS)
	@mkdir -p build/sanitize/sockit
	$(CC) -std=gnu11 -fPIC -pthread $(WARN) $(LUA_INC) -O1 -g $(SANFLAGS) -shared -o $@ $(SRCS)
# the fault-injection cores with the sanitizers (tools/sanitize.sh points
# spec/faults_spec.lua at them)
SANFAULTCORE     = build/sanitize/faults/sockit/core.so
SANFAULTPOLLCORE = build/sanitize/faults-poll/sockit/core.so
$(SANFAULTCORE): $(SRCS) $(HDRS)
	@mkdir -p build/sanitize/faults/sockit
	$(CC) -std=gnu11 -fPIC -pthread $(WARN) $(LUA_INC) -O1 -g $(SANFLAGS) -DSOCKIT_FAULTS -shared -o $@ $(SRCS)
$(SANFAULTPOLLCORE): $(SRCS) $(HDRS)
	@mkdir -p build/sanitize/faults-poll/sockit
	$(CC) -std=gnu11 -fPIC -pthread $(WARN) $(LUA_INC) -O1 -g $(SANFLAGS) -DSOCKIT_FAULTS -DSOCKIT_USE_POLL -shared -o $@ $(SRCS)

sanitize: deps
	@$(MAKE) --no-print-directory all $(POLLCORE) $(FAULTCORE) $(FAULTPOLLCORE) $(SANCORE) \
	  $(SANFAULTCORE) $(SANFAULTPOLLCORE) $(FUZZER)
	@sh tools/sanitize.sh

valgrind: deps
	@$(MAKE) --no-print-directory all $(POLLCORE) $(FAULTCORE) $(FAULTPOLLCORE) $(FUZZER)
	@sh tools/valgrind.sh

# libFuzzer over every C parser of untrusted input (fuzz/fuzz_parsers.c)
FUZZER       = build/fuzz/fuzz_parsers
FUZZ_RUNS   ?= 1000000
FUZZ_SECONDS ?= 120
$(FUZZER): fuzz/fuzz_parsers.c $(SRCS) $(HDRS)
	@mkdir -p build/fuzz/corpus
	clang -std=gnu11 -pthread -g -O1 -fsanitize=fuzzer,address,undefined \
	  -fno-sanitize-recover=undefined -DSOCKIT_FUZZ -DSOCKIT_FAULTS \
	  $(WARN) $(LUA_INC) -o $@ fuzz/fuzz_parsers.c $(SRCS) -llua5.4

fuzz: deps $(FUZZER)
	@mkdir -p build/fuzz/corpus
	$(FUZZER) -runs=$(FUZZ_RUNS) -max_total_time=$(FUZZ_SECONDS) -timeout=5 \
	  -print_final_stats=1 build/fuzz/corpus fuzz/seeds

deps:
	@sh tools/deps.sh

test: deps
	@$(MAKE) --no-print-directory all $(POLLCORE) $(FAULTCORE) $(FAULTPOLLCORE) $(FUZZER)
	@sh tools/test.sh

demo: deps
	@$(MAKE) --no-print-directory all
	@$(LUA) examples/demo.lua

repl: all
	@$(LUA) -i -e 'sockit = require "sockit"; print(sockit._VERSION .. " loaded as the global sockit")'

lint:
	luacheck lua spec examples bench

install:
	luarocks --lua-version=5.4 make $(if $(LUAROCKS_TREE),--tree=$(LUAROCKS_TREE)) rockspec/sockit-scm-1.rockspec

# the echo/HTTP/c10k table against C, LuaSocket, luv and cqueues, then the
# SPEC 4 figures: batched datagrams and sendfile (each prints its command)
bench: deps all
	@sh bench/deps.sh && $(LUA) bench/run.lua
	@$(LUA) bench/mmsg.lua
	@$(LUA) bench/sendfile.lua

clean:
	rm -rf build sockit
