"""Honest numbers: intervals, calibration and estimates for the unreviewed traffic, from rollup counts.

Every function here is pure (counts in, a frozen result out, no I/O), and every result names its
`method` and the `assumption` it rests on. The counts are the ones the hourly rollups can hold:

- per confidence bin b (see `calibration.calibration_bin`): reviewed `r_b`, correct `c_b`, the
  reviewed confidence sum `s_b`, and the count `u_b` of unreviewed (or all) predictions;
- the reviewed confusion cells (rows: true class, columns: predicted class);
- the predicted-class mix of all predictions.

Modules: `intervals` (Wilson / Clopper-Pearson, bootstrap F1), `calibration` (reliability bins, ECE,
MCE), `unreviewed` (post-stratified accuracy, AC, DoC, ATC, combined accuracy), `label_shift` (BBSE,
RLLS), `review_hints` (where the next reviews help most), `compare` (two proportions side by side: z-test or
Fisher, Benjamini-Hochberg over classes).
"""
