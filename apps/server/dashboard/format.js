// Small helpers the dashboard's modules share: element lookup, number and time formatting, a
// key-value table. Text is always set with textContent.

/** The element with this id. */
export const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/** A time of day from an ISO timestamp ('' for none). */
export function fmtTime(iso) {
  return iso ? new Date(iso).toLocaleTimeString() : '';
}

/** A number for people: integers as they are, others to 4 significant digits (1 decimal from 100). */
export function fmtNum(v) {
  return Number.isInteger(v) ? String(v) : Math.abs(v) >= 100 ? v.toFixed(1) : v.toPrecision(4);
}

/** A two-column table (key, value) of text. */
export function table(rows) {
  const t = document.createElement('table');
  t.className = 'kv';
  for (const [k, v] of rows) {
    const tr = document.createElement('tr');
    const th = document.createElement('th');
    th.textContent = k;
    const td = document.createElement('td');
    td.textContent = v;
    tr.append(th, td);
    t.append(tr);
  }
  return t;
}
