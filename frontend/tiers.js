// Match wording for a cosine score. The thresholds were chosen by bench/bench_match_tiers.py: the precision of
// same-label matches per score band on the clothing set (see docs/BENCHMARKS.md, "Match tiers"). They belong to
// the default model as measured (its id is in BENCHMARKS.md); another model, or new vectors, needs the bench again.
"use strict";

export const TIERS = [
  { name: "Very close", level: "close", from: 0.95 },
  { name: "Similar", level: "similar", from: 0.80 },
  { name: "Loosely related", level: "loose", from: 0.55 },
];
const WEAK = { name: "Weak match", level: "weak", from: -1 };

export function matchTier(score) {
  return TIERS.find((tier) => score >= tier.from) || WEAK;
}

export function isWeak(score) { return matchTier(score) === WEAK; }
