// Downloads: every card's data as CSV (the exact values, not the rounded ones on screen) and every chart as
// PNG, on the card's own background so a dark-scheme chart stays readable. Files are named after the card and
// the range shown, e.g. metrics-daily_2025-03-01_2025-03-31.csv.
let range = { from: "", to: "" };

export function setRange(shown) {
  range = shown;
}

function fileName(card, extension) {
  return `${card.dataset.name}_${range.from}_${range.to}.${extension}`.replaceAll(":", "");   // hours: no colon in a file name
}

function save(blob, name) {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = name;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}

// RFC 4180: fields with a comma, quote or line break are quoted; null is an empty field.
export function toCSV(rows) {
  const field = (value) => {
    if (value === null || value === undefined) return "";
    const text = String(value);
    return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
  };
  return `${rows.map((row) => row.map(field).join(",")).join("\r\n")}\r\n`;
}

function downloadCSV(card) {
  save(new Blob([toCSV(card.csv())], { type: "text/csv;charset=utf-8" }), fileName(card, "csv"));
}

function downloadPNG(card) {
  const canvas = card.querySelector("canvas");
  const copy = document.createElement("canvas");
  copy.width = canvas.width;
  copy.height = canvas.height;
  const context = copy.getContext("2d");
  context.fillStyle = getComputedStyle(card).backgroundColor;
  context.fillRect(0, 0, copy.width, copy.height);
  context.drawImage(canvas, 0, 0);
  copy.toBlob((blob) => save(blob, fileName(card, "png")), "image/png");
}

function button(kind, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = "tool";
  b.dataset.kind = kind;
  b.textContent = kind.toUpperCase();
  b.addEventListener("click", onClick);
  return b;
}

const WHAT = { csv: "Download the data as CSV", png: "Download the chart as PNG" };

// The buttons' accessible names carry the card's title (many cards have a CSV button): call after a retitle.
export function labelTools(card) {
  const title = card.querySelector("h2").textContent;
  for (const b of card.querySelectorAll(".tools button")) {
    b.setAttribute("aria-label", `${WHAT[b.dataset.kind]}: ${title}`);
    b.title = WHAT[b.dataset.kind];
  }
}

// The card's download buttons, in its head beside the title. The card's `csv()` gives the rows.
export function exportCard(card, { png = true } = {}) {
  const tools = document.createElement("div");
  tools.className = "tools";
  tools.append(button("csv", () => downloadCSV(card)));
  if (png) tools.append(button("png", () => downloadPNG(card)));
  card.querySelector(".card-head").append(tools);
  labelTools(card);
}
