// The dashboard's tabs, in order. A tab is a module exporting {id, title, build(panel, meta),
// refresh({meta, range})}: build draws the empty layout once, refresh fetches and updates in place.
// To add a tab, write such a module and list it here. Optional: `needsSegments` (shown only with segments
// configured), `unsegmented` (why the header's segment does not narrow it: its headings stay as they are),
// `partlySegmented` (what the segment narrows and what it does not: the parts it does not are data-unsegmented).
import * as overview from "./overview.js";
import * as metrics from "./metrics.js";
import * as samples from "./samples.js";
import * as perClass from "./per_class.js";
import * as confusion from "./confusion.js";
import * as training from "./training.js";
import * as compare from "./compare.js";
import * as health from "./health.js";
import * as drift from "./drift.js";

export const TABS = [overview, metrics, samples, perClass, confusion, training, compare, health, drift];
