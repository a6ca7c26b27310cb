# The kit's one entry point. Every target runs the grader package (python3 -m
# grader), which checks its tools first and installs them when run as root.
#
#   make help                        this list
#   make demo                        build, boot and grade the finished kernel (solutions/ of every lab: the staff's copy)
#   make test                        the whole test suite (the README's test command; the staff's copy lints first)
#   make check                       the inner loop (~1 min): fast tests, one mutant per lab
#   make test-lab LAB=NN             every test about one lab [MUTANT_SEEDS=N]
#   make lint                        black, flake8 and clang-format, as make test runs them
#   make format                      apply black and clang-format to the kit's files
#   make setup                       install the Debian packages the kit needs (as root), or name them
#   make build LAB=01                build a stage only: kernel.elf, kernel.sym, kernel.asm, the ISO
#   make qemu LAB=01 [SOLUTIONS=1]   boot a stage, serial on this terminal (RAW=1: escape sequences unchanged)
#   make qemu-gdb LAB=01             the same, waiting for GDB; then `make gdb`
#   make gdb                         attach GDB to the QEMU that `make qemu-gdb` started
#   make bochs LAB=01                boot a stage in Bochs, serial on this terminal
#   make bochs-debug LAB=01          the Bochs debugger, stopped at _start and at xchg %bx,%bx
#   make grade [LAB=01]              grade a stage (every stage without LAB); more options below
#       SOLUTIONS=1  SEED=0x...  BELOW=solutions  EMULATOR=qemu|bochs|both  MEMORY=MiB  REPORTS=dir
#   BELOW=solutions works with every target that builds or boots: each lab below LAB from the
#       reference code in solutions/ where the staff have released it, from your code otherwise
#   make bench                       benchmark figures (medians): QEMU and Bochs boots, grading
#   make bench-jit [JIT="sse2 avx2"] the lab 06 JIT natively: cycles per multiply-add, each path (or those named),
#                                    and this machine's roofline (build/native/roofline.svg); BOOK=1: the book's
#   make jit-check [SOLUTIONS=1]     every instruction form your lab 06 encoder emits, against llvm-objdump
#   make book                        the HTML under build/book/ and build/book/book.epub, from the chapters
#                                    as they are (the staff's copy first syncs their listings,
#                                    figures and transcripts)
#   make book-check                  make book, then load every page in headless Chromium (1200, 600, 400 px)
#                                    and the EPUB's (600, 400 px), and validate book.epub with epubcheck
#   make clean                       remove build/ and compile_commands.json
#   make handout OUT=DIR [LAB=NN]    instructors: the students' repository, made from this copy
#   make gradescope LAB=NN|all       instructors: build/gradescope/lab-NN-autograder.zip
#   make release LAB=NN OUT=DIR      instructors: lab NN's reference code as DIR/solutions/NN-name/, after its deadline

PYTHON ?= $(if $(wildcard /usr/bin/python3),/usr/bin/python3,python3)
# -S: the grader needs the standard library only, and the site module costs a
# student's every `make grade` a few milliseconds of start-up.
GRADER := $(PYTHON) -S -m grader
LAB ?=
SOLUTIONS ?= 0
SEED ?=
EMULATOR ?= qemu
BELOW ?=
MEMORY ?=
TESTS ?= all
JIT ?=
RAW ?=
BOOK ?=
REPORTS ?=
OUT ?=

raw = $(if $(filter 1 yes true,$(RAW)),--raw)
# BELOW=solutions: each lab below LAB from solutions/ where the staff have released it, else your code
below = $(if $(BELOW),$(if $(filter solutions,$(BELOW)),--solutions-below,$(error BELOW=$(BELOW): the one value is BELOW=solutions)))
solutions = $(if $(filter 1 yes true,$(SOLUTIONS)),--solutions)
opts = $(if $(LAB),--lab $(LAB)) $(solutions) $(below) \
       $(if $(SEED),--seed $(SEED)) --emulator $(EMULATOR)
need_lab = $(if $(LAB),,$(error LAB is missing: for example `make $@ LAB=01`))
reports = $(if $(REPORTS),--json $(REPORTS)/grade.json --junit $(REPORTS)/junit.xml)
staff = $(wildcard .staff-copy)
no_solutions = echo "make $@ measures the reference solutions of every lab, which only an instructor's copy of the kit (marked by .staff-copy) is for"; exit 2

.PHONY: help demo test check test-lab lint format setup grade qemu qemu-gdb gdb bochs bochs-debug build bench bench-jit jit-check book book-check clean handout gradescope release
.DEFAULT_GOAL := help

help:
	@sed -n 's/^#   //p' $(firstword $(MAKEFILE_LIST))

demo:
	@$(GRADER) demo $(if $(SEED),--seed $(SEED))

# pytest-xdist: two workers keep both cores busy while one waits for an emulator;
# the 20 slowest tests are listed at the end, for whoever wants a faster suite;
# --dist loadgroup keeps an xdist_group (the term's states, in order) on one worker
PYTEST = $(PYTHON) -m pytest -q -rs -n 2 --dist loadgroup --durations=20

test:
	@$(GRADER) setup --for test
	@$(if $(staff),$(PYTHON) -m grader.lint)
	@$(PYTEST)

check:
	@$(GRADER) setup --for test
	@MUTANT_SEEDS=0 $(PYTEST) -m "not slow"

test-lab:
	$(need_lab)
	@$(GRADER) setup --for test
	@$(PYTEST) --lab $(LAB)

lint:
	@$(PYTHON) -m grader.lint

format:
	@$(PYTHON) -m grader.lint --fix

setup:
	@$(GRADER) setup --for test

grade:
	@$(if $(REPORTS),mkdir -p $(REPORTS))
	@$(GRADER) grade $(opts) $(if $(MEMORY),--memory $(MEMORY)) $(reports)

qemu:
	$(need_lab)
	@$(GRADER) qemu $(opts) --tests $(TESTS) $(raw)

qemu-gdb:
	$(need_lab)
	@$(GRADER) qemu --gdb $(opts) --tests $(TESTS) $(raw)

gdb:
	@$(GRADER) gdb

bochs:
	$(need_lab)
	@$(GRADER) bochs $(opts) --tests $(TESTS) $(raw)

bochs-debug:
	$(need_lab)
	@$(GRADER) bochs-debug $(opts) --tests $(TESTS)

build:
	$(need_lab)
	@$(GRADER) build $(opts)

bench:
	@$(if $(staff),$(PYTHON) -m grader.bench,$(no_solutions))

jit-check:
	@$(GRADER) setup
	@$(PYTHON) labs/06-jit-model/native.py check $(if $(solutions),--solutions,--labs) $(below)

bench-jit:
	@$(GRADER) setup
	@$(PYTHON) labs/06-jit-model/native.py bench $(solutions) $(below) $(foreach k,$(JIT),--path $(k)) $(if $(filter 1 yes true,$(BOOK)),--book)

book:
	@$(GRADER) setup --for book
	@$(if $(staff),$(PYTHON) book/build.py --sync)
	@$(PYTHON) book/build.py

book-check:
	@$(GRADER) setup --for book-check
	@$(if $(staff),$(PYTHON) book/build.py --sync)
	@$(PYTHON) book/build.py
	@$(PYTHON) book/build.py --browser-check

clean:
	rm -rf build compile_commands.json

handout:
	$(if $(OUT),,$(error OUT is missing: for example `make handout OUT=../kit-2027`))
	@$(GRADER) handout $(OUT) $(if $(LAB),--lab $(LAB))

gradescope:
	$(need_lab)
	@$(GRADER) gradescope --lab $(LAB)

release:
	$(need_lab)
	$(if $(OUT),,$(error OUT is missing: for example `make release LAB=03 OUT=../release-03`))
	@$(GRADER) release --lab $(LAB) $(OUT)
