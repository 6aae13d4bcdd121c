# snnx — `make run` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# torch/torchvision pinned to the releases this machine's pip serves from disk.
TORCH  := torch==2.14.1 torchvision==0.29.1

.PHONY: help install run test test-full bench gpu-check clean clean-cache

help:  ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv/ and install snnx with its test tools

run: $(STAMP)  ## run the embedded default: train, convert, simulate, print a table
	$(BIN)/snnx run

TEST_WORKERS ?= 2
test: $(STAMP)  ## the default test suite (no `slow` tests), < 10 min on 2 cores; TEST_WORKERS=… pytest workers
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS)

test-full: $(STAMP)  ## every test, including the slow ones
	$(BIN)/python -m pytest -q -m ''

# The benchmark compares with SpikingJelly 2.0.0, installed without its (heavy) declared
# dependencies; the `bench` extra holds the few its ann2snn module imports.
BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/pip install -q -e '.[dev,bench]'
	$(BIN)/pip install -q --no-deps spikingjelly==2.0.0
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)  ## simulation-engine benchmark, quick mode (< 3 min on 2 cores)
	$(BIN)/python scripts/bench_sim.py --quick

# gpu-check: on device=auto (CUDA when present, else CPU), cpu or cuda:<i>; GPU_CHECK_ARGS passes sizes, e.g.
# GPU_CHECK_ARGS='--test-images 200 --max-T 32' (python scripts/gpu_check.py --help lists them).
device ?= auto
GPU_CHECK_ARGS ?=

gpu-check: $(STAMP)  ## device check: every method vs a CPU float64 run, T = 1…64, and throughput (device=auto|cpu|cuda)
	$(BIN)/python scripts/gpu_check.py --device $(device) $(GPU_CHECK_ARGS)

clean:  ## remove outputs (the artifact cache too)
	rm -rf outputs multirun

clean-cache: $(STAMP)  ## free the artifact cache under ROOT (default outputs); runs and tables stay
	$(BIN)/snnx clean paths.root=$(ROOT)

# -- paper tables --------------------------------------------------------------------------
# table-<paper>: the paper's presets (conf/experiment/<paper>_*.yaml) swept with Hydra multirun,
# then `snnx table` for each of its layouts (conf/table/<paper>_*.yaml). Needs the datasets under
# dataset.root ($SNNX_DATA, else data/) and, realistically, a GPU.
# table-<paper>-embedded: the same layouts at embedded scale (mnist5k / digits, small LeNet, ResNet-20
# and VGG), a few minutes each on 2 CPU cores; tables go to $(ROOT)/tables/<layout>_embedded.csv + .png.
# Every trained ANN is cached under $(ROOT)/cache, so a sweep over conversions trains it once and a
# rerun only simulates. LAUNCHER picks Hydra's launcher: basic (one job after another), joblib
# (parallel local processes), or site_slurm / submitit_slurm (one Slurm job each; needs
# `pip install -e '.[slurm]'`; edit conf/hydra/launcher/site_slurm.yaml for the cluster first).
# Multi-GPU training of one ANN is torchrun's job, not a launcher's (README, "Scale-out").
LAUNCHER ?= basic
ROOT     ?= outputs
SNNX     := $(BIN)/snnx
SWEEP     = $(SNNX) run -m hydra/launcher=$(LAUNCHER) paths.root=$(ROOT)
TABLE     = $(SNNX) table paths.root=$(ROOT)
EMBEDDED  = $(ROOT)/sweeps/embedded

CSQCFS_ALL  := csqcfs_cifar10_vgg16,csqcfs_cifar10_resnet18,csqcfs_cifar10_resnet20,csqcfs_cifar10_resnet50,csqcfs_cifar10_resnet101,csqcfs_cifar100_vgg16,csqcfs_cifar100_resnet20,csqcfs_cifar100_resnet50,csqcfs_cifar100_resnet101
CSQCFS_ABL  := csqcfs_cifar10_vgg16,csqcfs_cifar10_resnet20,csqcfs_cifar100_vgg16,csqcfs_cifar100_resnet20
DENGGU_ALL  := denggu_cifar10_cifarnet,denggu_cifar10_vgg16,denggu_cifar10_resnet20,denggu_cifar100_vgg16,denggu_cifar100_resnet20
# Deng & Gu Tables 2-3 (App. A.2): the mean over T = 400-600, with the constant shift θ/1600 (convert.shift_T=800).
DENGGU_LONG_T := 'sim.T=[400,450,500,512,550,600]'
MSAT_VGG    := msat_cifar10_vgg16,msat_cifar100_vgg16
MSAT_RESNET := msat_cifar10_resnet20,msat_cifar100_resnet20
# The embedded MSAT ablation stops at T = 128 (Table 2's runs go to 256).
MSAT_ABLATION_T := 'sim.T=[1,2,4,8,16,32,64,128]'

.PHONY: table-csqcfs table-denggu table-denggu-imagenet table-msat table-allint tables-embedded \
	table-csqcfs-embedded table-denggu-embedded table-msat-embedded table-allint-embedded

table-csqcfs: $(STAMP)  ## CS-QCFS Tables 1-7, full scale (CIFAR-10/100; GPU)
	$(SWEEP) hydra.sweep.dir=$(ROOT)/sweeps/csqcfs/csqcfs experiment=$(CSQCFS_ALL) convert=cos,qcfs
	$(SWEEP) hydra.sweep.dir=$(ROOT)/sweeps/csqcfs/ablation experiment=$(CSQCFS_ABL) act=cqcfs,sqcfs convert=cos,qcfs
	$(SWEEP) hydra.sweep.dir=$(ROOT)/sweeps/csqcfs/origin experiment=$(CSQCFS_ALL) act=qcfs train.two_stage=false convert=cos,qcfs
	$(SWEEP) hydra.sweep.dir=$(ROOT)/sweeps/csqcfs/layer-wise experiment=$(CSQCFS_ABL) act=qcfs train.two_stage=true convert=cos,qcfs
	for n in 1 2 3 4 5 6 7; do $(TABLE) table=csqcfs_table$$n || exit 1; done

table-denggu: $(STAMP)  ## Deng & Gu Tables 1-5, full scale (CIFAR-10/100; GPU)
	$(SWEEP) hydra.sweep.dir=$(ROOT)/sweeps/denggu/threshold experiment=$(DENGGU_ALL) convert.variant=T,TS
	$(SWEEP) hydra.sweep.dir=$(ROOT)/sweeps/denggu/shift-only experiment=$(DENGGU_ALL) act=relu convert.variant=S
	$(SWEEP) hydra.sweep.dir=$(ROOT)/sweeps/denggu/relu experiment=$(DENGGU_ALL) act=relu convert=maxnorm $(DENGGU_LONG_T)
	$(SWEEP) hydra.sweep.dir=$(ROOT)/sweeps/denggu/constant-shift experiment=$(DENGGU_ALL) convert.shift_T=800 $(DENGGU_LONG_T)
	for n in 1 2 3 4 5; do $(TABLE) table=denggu_table$$n || exit 1; done

# A target of its own: ImageNet-1k cannot be downloaded (dataset.root must hold it), and its VGG-16 dwarfs the rest.
table-denggu-imagenet: $(STAMP)  ## Deng & Gu Table 1's ImageNet block and Table 6, full scale (ImageNet-1k; GPU)
	$(SWEEP) hydra.sweep.dir=$(ROOT)/sweeps/denggu/imagenet-threshold experiment=denggu_imagenet_vgg16 convert.variant=T,TS
	$(SWEEP) hydra.sweep.dir=$(ROOT)/sweeps/denggu/imagenet-shift-only experiment=denggu_imagenet_vgg16 act=relu convert.variant=S
	for n in 1 6; do $(TABLE) table=denggu_table$$n || exit 1; done

table-msat: $(STAMP)  ## MSAT Table 2, DTT/DET ablation, SIN and firing-rate plots, full scale (CIFAR-10/100; GPU)
	$(SWEEP) hydra.sweep.dir=$(ROOT)/sweeps/msat/vgg16 experiment=$(MSAT_VGG) convert=maxnorm,pnorm,channelnorm,msat_vgg16
	$(SWEEP) hydra.sweep.dir=$(ROOT)/sweeps/msat/resnet20 experiment=$(MSAT_RESNET) convert=maxnorm,pnorm,channelnorm,msat_resnet20
	$(SWEEP) hydra.sweep.dir=$(ROOT)/sweeps/msat/ablation-det experiment=$(MSAT_VGG),$(MSAT_RESNET) sim.record_layers=false convert.confidence_last=null convert.use_dtt=false convert.use_det=true,false
	$(SWEEP) hydra.sweep.dir=$(ROOT)/sweeps/msat/ablation-dtt experiment=$(MSAT_VGG),$(MSAT_RESNET) sim.record_layers=false convert.confidence_last=null convert.use_dtt=true convert.use_det=false
	$(SWEEP) hydra.sweep.dir=$(ROOT)/sweeps/msat/ablation-both experiment=$(MSAT_VGG),$(MSAT_RESNET) sim.record_layers=false convert.confidence_last=null
	$(SWEEP) hydra.sweep.dir=$(ROOT)/sweeps/msat/ablation-fixed experiment=$(MSAT_VGG),$(MSAT_RESNET) sim.record_layers=false convert.confidence_last=null convert.fixed_fraction=0.7
	$(SWEEP) hydra.sweep.dir=$(ROOT)/sweeps/msat/opt-cifar10 experiment=msat_cifar10_vgg16,msat_cifar10_resnet20 sim.record_layers=false act=clip convert=shift
	$(SWEEP) hydra.sweep.dir=$(ROOT)/sweeps/msat/opt-cifar100 experiment=msat_cifar100_vgg16,msat_cifar100_resnet20 sim.record_layers=false act=clip act.y_th=2 convert=shift
	for t in msat_table2 msat_ablation msat_sin msat_rate; do $(TABLE) table=$$t || exit 1; done

table-allint: $(STAMP)  ## all-integer SNN Tables 1-6, full scale (MNIST, CIFAR-10/100, ImageNet; GPU)
	$(SWEEP) hydra.sweep.dir=$(ROOT)/sweeps/allint/grid experiment=allint_mnist_lenet,allint_cifar10_vgg11 act.k=0,1,2 train.weight_quant=none,ternary convert.integer=false,true
	$(SWEEP) hydra.sweep.dir=$(ROOT)/sweeps/allint/cifar100 experiment=allint_cifar100_vgg11
	$(SWEEP) hydra.sweep.dir=$(ROOT)/sweeps/allint/imagenet experiment=allint_imagenet_mobilenet
	$(SWEEP) hydra.sweep.dir=$(ROOT)/sweeps/allint/norm experiment=allint_mnist_lenet act=relu train.weight_quant=none convert=maxnorm,pnorm
	$(SWEEP) hydra.sweep.dir=$(ROOT)/sweeps/allint/qcfs experiment=allint_mnist_lenet,allint_cifar10_vgg11,allint_cifar100_vgg11 act=qcfs train.weight_quant=none convert=qcfs
	$(SWEEP) hydra.sweep.dir=$(ROOT)/sweeps/allint/shift experiment=allint_cifar10_vgg11 act=clip train.weight_quant=none convert=shift 'sim.T=[4,8,16,32,64,128]'
	for n in 1 2 3 4 5 6; do $(TABLE) table=allint_table$$n || exit 1; done

tables-embedded: table-csqcfs-embedded table-denggu-embedded table-msat-embedded table-allint-embedded  ## all four embedded-scale paper tables

table-csqcfs-embedded: $(STAMP)  ## CS-QCFS Tables 1-7 at embedded scale (mnist5k LeNet, digits ResNet-20)
	rm -rf $(EMBEDDED)/csqcfs
	$(SWEEP) hydra.sweep.dir=$(EMBEDDED)/csqcfs/two-stage experiment=embedded_csqcfs,embedded_csqcfs_resnet20 act=csqcfs,cqcfs,sqcfs convert=cos,qcfs
	$(SWEEP) hydra.sweep.dir=$(EMBEDDED)/csqcfs/origin experiment=embedded_csqcfs,embedded_csqcfs_resnet20 act=qcfs train.two_stage=false,true convert=cos,qcfs
	$(TABLE) table=csqcfs_table1 table.embedded=true table.sweep_dir=$(EMBEDDED)/csqcfs table.name=csqcfs_table1_embedded table.embedded_filters.dataset=mnist5k
	$(TABLE) table=csqcfs_table2 table.embedded=true table.sweep_dir=$(EMBEDDED)/csqcfs table.name=csqcfs_table2_embedded table.embedded_filters.dataset=digits
	for n in 3 4 5 6 7; do $(TABLE) table=csqcfs_table$$n table.embedded=true table.sweep_dir=$(EMBEDDED)/csqcfs table.name=csqcfs_table$${n}_embedded || exit 1; done

table-denggu-embedded: $(STAMP)  ## Deng & Gu Tables 1-5 at embedded scale (mnist5k and digits LeNet)
	rm -rf $(EMBEDDED)/denggu
	$(SWEEP) hydra.sweep.dir=$(EMBEDDED)/denggu/threshold experiment=embedded_denggu,embedded_denggu_digits convert.variant=T,TS
	$(SWEEP) hydra.sweep.dir=$(EMBEDDED)/denggu/shift-only experiment=embedded_denggu,embedded_denggu_digits act=relu convert.variant=S
	$(SWEEP) hydra.sweep.dir=$(EMBEDDED)/denggu/long-relu experiment=embedded_denggu,embedded_denggu_digits act=relu convert=maxnorm $(DENGGU_LONG_T)
	$(SWEEP) hydra.sweep.dir=$(EMBEDDED)/denggu/long-threshold experiment=embedded_denggu,embedded_denggu_digits convert.variant=T $(DENGGU_LONG_T)
	$(SWEEP) hydra.sweep.dir=$(EMBEDDED)/denggu/long-shift experiment=embedded_denggu,embedded_denggu_digits convert.shift_T=800 $(DENGGU_LONG_T)
	$(TABLE) table=denggu_table1 table.embedded=true table.sweep_dir=$(EMBEDDED)/denggu table.name=denggu_table1_embedded 'table.T=[4,8,16,32,64,128,512,400-600]'
	$(TABLE) table=denggu_table4 table.embedded=true table.sweep_dir=$(EMBEDDED)/denggu table.name=denggu_table4_embedded table.embedded_filters.dataset=mnist5k 'table.T=[4,8,16,32,64,128,256,512]'
	$(TABLE) table=denggu_table5 table.embedded=true table.sweep_dir=$(EMBEDDED)/denggu table.name=denggu_table5_embedded table.embedded_filters.dataset=digits 'table.T=[4,8,16,32,64,128,256,512]'
	$(TABLE) table=denggu_table2 table.embedded=true table.sweep_dir=$(EMBEDDED)/denggu table.name=denggu_table2_embedded table.embedded_filters.dataset=mnist5k
	$(TABLE) table=denggu_table3 table.embedded=true table.sweep_dir=$(EMBEDDED)/denggu table.name=denggu_table3_embedded table.embedded_filters.dataset=digits

table-msat-embedded: $(STAMP)  ## MSAT Table 2, ablation, SIN and firing-rate plots at embedded scale
	rm -rf $(EMBEDDED)/msat
	$(SWEEP) hydra.sweep.dir=$(EMBEDDED)/msat/lenet experiment=embedded_msat convert=maxnorm,msat_vgg16
	$(SWEEP) hydra.sweep.dir=$(EMBEDDED)/msat/norm experiment=embedded_msat sim.record_layers=false convert=pnorm,channelnorm
	$(SWEEP) hydra.sweep.dir=$(EMBEDDED)/msat/ablation-det experiment=embedded_msat sim.record_layers=false convert.confidence_last=null $(MSAT_ABLATION_T) convert.use_dtt=false convert.use_det=true,false
	$(SWEEP) hydra.sweep.dir=$(EMBEDDED)/msat/ablation-dtt experiment=embedded_msat sim.record_layers=false convert.confidence_last=null $(MSAT_ABLATION_T) convert.use_dtt=true convert.use_det=false convert.fixed_fraction=null,0.7
	$(SWEEP) hydra.sweep.dir=$(EMBEDDED)/msat/ablation-both experiment=embedded_msat sim.record_layers=false convert.confidence_last=null $(MSAT_ABLATION_T)
	$(SWEEP) hydra.sweep.dir=$(EMBEDDED)/msat/opt experiment=embedded_msat sim.record_layers=false act=clip convert=shift
	$(SWEEP) hydra.sweep.dir=$(EMBEDDED)/msat/resnet20 experiment=embedded_msat_resnet20 convert=maxnorm,pnorm,msat_resnet20
	$(TABLE) table=msat_table2 table.embedded=true table.sweep_dir=$(EMBEDDED)/msat table.name=msat_table2_embedded 'table.T=[8,16,32,64,128,256]'
	$(TABLE) table=msat_ablation table.embedded=true table.sweep_dir=$(EMBEDDED)/msat table.name=msat_ablation_embedded
	$(TABLE) table=msat_sin table.embedded=true table.sweep_dir=$(EMBEDDED)/msat table.name=msat_sin_embedded
	$(TABLE) table=msat_rate table.embedded=true table.sweep_dir=$(EMBEDDED)/msat table.name=msat_rate_embedded

table-allint-embedded: $(STAMP)  ## all-integer SNN Tables 1-5 at embedded scale (mnist5k LeNet, digits VGG)
	rm -rf $(EMBEDDED)/allint
	$(SWEEP) hydra.sweep.dir=$(EMBEDDED)/allint/grid experiment=embedded_allint,embedded_allint_vgg act.k=0,1,2 train.weight_quant=none,ternary convert.integer=false,true
	$(SWEEP) hydra.sweep.dir=$(EMBEDDED)/allint/norm experiment=embedded_allint act=relu train.weight_quant=none convert=maxnorm,pnorm
	$(SWEEP) hydra.sweep.dir=$(EMBEDDED)/allint/qcfs experiment=embedded_allint,embedded_allint_vgg act=qcfs train.weight_quant=none convert=qcfs
	$(SWEEP) hydra.sweep.dir=$(EMBEDDED)/allint/shift experiment=embedded_allint act=clip train.weight_quant=none convert=shift 'sim.T=[2,4,8,16,32,64,128]'
	$(TABLE) table=allint_table1 table.embedded=true table.sweep_dir=$(EMBEDDED)/allint table.name=allint_table1_embedded table.embedded_filters.dataset=mnist5k
	$(TABLE) table=allint_table2 table.embedded=true table.sweep_dir=$(EMBEDDED)/allint table.name=allint_table2_embedded table.embedded_filters.dataset=mnist5k
	$(TABLE) table=allint_table3 table.embedded=true table.sweep_dir=$(EMBEDDED)/allint table.name=allint_table3_embedded table.embedded_filters.dataset=digits
	$(TABLE) table=allint_table4 table.embedded=true table.sweep_dir=$(EMBEDDED)/allint table.name=allint_table4_embedded table.embedded_filters.dataset=mnist5k
	$(TABLE) table=allint_table5 table.embedded=true table.sweep_dir=$(EMBEDDED)/allint table.name=allint_table5_embedded table.embedded_filters.dataset=digits
