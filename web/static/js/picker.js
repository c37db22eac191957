// The calendar: a date-range picker (cally's <calendar-range>, from npm, served at /vendor/ and loaded by
// index.html, which registers its elements) in a panel that a button opens. Pick the first day, then the last:
// the range becomes those whole local days. Keyboard: arrow keys move by day and week, Page Up / Down by month,
// Enter or Space picks, Escape closes and gives the focus back to the button. The fields beside it show the
// range in ISO form, the one format of the page.
import { coveringDays, today } from "./format.js";

const ARROW = (d) => `<svg slot="${d}" role="img" aria-label="${d === "previous" ? "Previous" : "Next"} month"
  viewBox="0 0 16 16" width="16" height="16"><path fill="currentColor"
  d="${d === "previous" ? "M10.5 3 5.5 8l5 5 1-1-4-4 4-4z" : "M5.5 3l5 5-5 5-1-1 4-4-4-4z"}"/></svg>`;

// Wire the button and its panel; `pick({from, to})` is called with the chosen days. Returns `show(range)`,
// which sets the calendar to a range shown elsewhere (an hour range: the days it touches).
export function startPicker(button, panel, pick, zone) {
  panel.innerHTML = `<calendar-range months="1" locale="en-GB" first-day-of-week="1">${ARROW("previous")}
      ${ARROW("next")}<calendar-month></calendar-month></calendar-range>
    <p class="calendar-help">Pick the first day, then the last. Arrow keys move, Enter picks, Esc closes.</p>`;
  const calendar = panel.querySelector("calendar-range");
  const open = (isOpen) => {
    panel.hidden = !isOpen;
    button.setAttribute("aria-expanded", String(isOpen));
    if (isOpen) {
      calendar.setAttribute("max", today(zone()));
      calendar.focus();
    }
  };
  button.addEventListener("click", () => open(panel.hidden));
  panel.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    event.preventDefault();
    open(false);
    button.focus();
  });
  document.addEventListener("click", (event) => {
    if (!panel.hidden && !panel.contains(event.target) && !button.contains(event.target)) open(false);
  });
  calendar.addEventListener("change", () => {
    const [from, to] = calendar.value.split("/");
    open(false);
    button.focus();
    pick({ from, to });
  });
  return (range) => {
    const days = coveringDays(range);
    calendar.value = `${days.from}/${days.to}`;
    calendar.focusedDate = days.to;
  };
}
