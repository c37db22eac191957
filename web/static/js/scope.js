// The segment a view is narrowed to (?segment=field:value), named wherever a figure is titled: every heading of a
// segmented tab ends with "· field = value", set by `titled` (cards, tables) or, for headings drawn once, by
// `applyScope`. Tabs that cover every prediction whatever the selection (drift) are marked data-unsegmented and
// keep their titles, and so are the parts of a tab that do (data health's whole-system part).
let segment = null;

export function suffix() {
  return segment ? ` · ${segment.field} = ${segment.value}` : "";
}

function scoped(heading) {
  return !heading.closest("[data-unsegmented]");
}

// Set a heading's title, with the segment's name where its tab is narrowed to one.
export function titled(heading, title) {
  heading.dataset.base = title;
  heading.textContent = scoped(heading) ? title + suffix() : title;
}

// A new selection (or none): every heading of the page retitled.
export function applyScope(selected) {
  segment = selected;
  for (const heading of document.querySelectorAll("#panels h2")) {
    if (!("base" in heading.dataset)) heading.dataset.base = heading.textContent;
    titled(heading, heading.dataset.base);
  }
}
