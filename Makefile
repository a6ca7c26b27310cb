# The kit's one entry point. Every target runs the grader package (python3 -m
# grader), which checks its tools first and installs them when run as root.
#
#   make help                        this list
#   make demo                        build, boot and grade the finished kernel (solutions/: the staff's copy)
#   make test                        the whole test suite
#   make setup                       install the Debian packages the kit needs (as root), or name them
#   make build LAB=01                build a stage only: kernel.elf, kernel.sym, kernel.asm, the ISO
#   make qemu LAB=01 [SOLUTIONS=1]   boot a stage, serial on this terminal
#   make qemu-gdb LAB=01             the same, waiting for GDB; then `make gdb`
#   make gdb                         attach GDB to the QEMU that `make qemu-gdb` started
#   make bochs LAB=01                boot a stage in Bochs, serial on this terminal
#   make bochs-debug LAB=01          the Bochs debugger, stopped at _start and at xchg %bx,%bx
#   make grade [LAB=01]              grade a stage (every stage without LAB); more options below
#       SOLUTIONS=1  SEED=0x...  BELOW=solutions  EMULATOR=qemu|bochs|both  MEMORY=MiB  REPORTS=dir
#   make bench                       benchmark figures (medians): QEMU and Bochs boots, grading
#   make bench-jit [JIT="sse2 avx2"] the lab 06 JIT natively: cycles per multiply-add, each path (or those named),
#                                    and this machine's roofline (build/native/roofline.svg); BOOK=1: the book's
#   make jit-check [SOLUTIONS=1]     every instruction form your lab 06 encoder emits, against llvm-objdump
#   make book                        sync the chapters' listings, figures and transcripts, then the
#                                    HTML under build/book/ and build/book/book.epub
#   make book-check                  make book, then load every page in headless Chromium (1200, 600 px)
#   make clean                       remove build/ and compile_commands.json
#   make handout OUT=DIR [LAB=NN]    instructors: the students' repository, made from this copy
#   make gradescope LAB=NN|all       instructors: build/gradescope/lab-NN-autograder.zip

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
BOOK ?=
REPORTS ?=
OUT ?=

opts = $(if $(LAB),--lab $(LAB)) $(if $(filter 1 yes true,$(SOLUTIONS)),--solutions) \
       $(if $(SEED),--seed $(SEED)) --emulator $(EMULATOR)
need_lab = $(if $(LAB),,$(error LAB is missing: for example `make $@ LAB=01`))
reports = $(if $(REPORTS),--json $(REPORTS)/grade.json --junit $(REPORTS)/junit.xml)
no_solutions = echo "make $@ measures the reference solutions (solutions/), which only an instructor's copy of the kit has"; exit 2

.PHONY: help demo test setup grade qemu qemu-gdb gdb bochs bochs-debug build bench bench-jit jit-check book book-check clean handout gradescope
.DEFAULT_GOAL := help

help:
	@sed -n 's/^#   //p' $(firstword $(MAKEFILE_LIST))

demo:
	@$(GRADER) demo $(if $(SEED),--seed $(SEED))

test:
	@$(GRADER) setup --for test
	@$(PYTHON) -m pytest -q -rs grader/tests labs

setup:
	@$(GRADER) setup --for test

grade:
	@$(if $(REPORTS),mkdir -p $(REPORTS))
	@$(GRADER) grade $(opts) $(if $(filter solutions,$(BELOW)),--solutions-below) $(if $(MEMORY),--memory $(MEMORY)) $(reports)

qemu:
	$(need_lab)
	@$(GRADER) qemu $(opts) --tests $(TESTS)

qemu-gdb:
	$(need_lab)
	@$(GRADER) qemu --gdb $(opts) --tests $(TESTS)

gdb:
	@$(GRADER) gdb

bochs:
	$(need_lab)
	@$(GRADER) bochs $(opts) --tests $(TESTS)

bochs-debug:
	$(need_lab)
	@$(GRADER) bochs-debug $(opts) --tests $(TESTS)

build:
	$(need_lab)
	@$(GRADER) build $(opts)

bench:
	@$(if $(wildcard solutions),$(PYTHON) -m grader.bench,$(no_solutions))

jit-check:
	@$(GRADER) setup
	@$(PYTHON) labs/06-jit-model/native.py check $(if $(filter 1 yes true,$(SOLUTIONS)),,--labs)

bench-jit:
	@$(GRADER) setup
	@$(PYTHON) labs/06-jit-model/native.py bench $(if $(wildcard solutions),,--labs) $(foreach k,$(JIT),--path $(k)) $(if $(filter 1 yes true,$(BOOK)),--book)

book:
	@$(GRADER) setup --for book
	@$(PYTHON) book/build.py --sync
	@$(PYTHON) book/build.py

book-check:
	@$(GRADER) setup --for book-check
	@$(PYTHON) book/build.py --sync
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
