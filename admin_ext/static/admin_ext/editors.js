/* Visual editors for an order's sweeps, prompt and tokens (Alpine.js).
 *
 * Each editor owns the field's real textarea (x-ref="json" or "input"):
 * the engine's value is always what the form submits. Edits write it and
 * fire a bubbling "input" event so the form's htmx preview sees them.
 */
(() => {
  "use strict";

  const NUMERIC = ["integer", "number"];
  let nextId = 1;

  /** Write a textarea the form submits and let listeners know. */
  function writeField(component, textarea, text) {
    if (textarea.value === text) return;
    textarea.value = text;
    component.writing = true;
    textarea.dispatchEvent(new Event("input", { bubbles: true }));
    component.writing = false;
  }

  function parseJson(text, fallback) {
    if (!text.trim()) return { value: fallback };
    try {
      return { value: JSON.parse(text) };
    } catch (error) {
      return { error: error.message };
    }
  }

  /** A typed value from text: JSON when it parses, else the text itself. */
  function looseValue(text) {
    try {
      return JSON.parse(text);
    } catch (error) {
      return text;
    }
  }

  function show(value) {
    return typeof value === "string" ? value : JSON.stringify(value);
  }

  const plural = (n, word) => `${n.toLocaleString()} ${word}${n === 1 ? "" : "s"}`;

  /* ---------------------------------------------------------------- sweeps */

  function splitList(text, kind, hasEnum) {
    if (NUMERIC.includes(kind) || kind === "boolean") {
      return text.split(/[\s,;]+/).filter(Boolean);
    }
    const parts = hasEnum ? text.split(/[\n,]/) : text.split("\n");
    return parts.map((part) => part.trim()).filter(Boolean);
  }

  function typedItem(part, field) {
    const kind = field.type;
    if (NUMERIC.includes(kind)) {
      const number = Number(part);
      if (!Number.isFinite(number)) throw new Error(`"${part}" is not a number`);
      if (kind === "integer" && !Number.isInteger(number)) {
        throw new Error(`${part} is not a whole number`);
      }
      return number;
    }
    if (kind === "boolean") {
      const word = part.toLowerCase();
      if (["true", "yes", "on", "1"].includes(word)) return true;
      if (["false", "no", "off", "0"].includes(word)) return false;
      throw new Error(`"${part}" is not true or false`);
    }
    return kind === "object" ? looseValue(part) : part;
  }

  function decimals(number) {
    const text = String(number);
    return text.includes(".") ? text.split(".")[1].length : 0;
  }

  function expandRange(row, field, cap) {
    const [from, to, step] = [row.from, row.to, row.step].map(Number);
    if ([row.from, row.to, row.step].some((v) => String(v).trim() === "")) {
      throw new Error("enter from, to and step");
    }
    if (![from, to, step].every(Number.isFinite)) throw new Error("from, to and step must be numbers");
    if (step === 0 || (to - from) / step < 0) throw new Error("the step never reaches the end");
    if (field.type === "integer" && ![from, step].every(Number.isInteger)) {
      throw new Error("whole numbers only for this field");
    }
    const count = Math.floor((to - from) / step + 1e-9) + 1;
    if (count > cap) throw new Error(`${count.toLocaleString()} values, over the cap of ${cap.toLocaleString()}`);
    const places = Math.max(decimals(from), decimals(step));
    return Array.from({ length: count }, (_, i) => Number((from + i * step).toFixed(places)));
  }

  /** A row's values with an error, or warnings about the schema bounds. */
  function rowValues(row, field, cap) {
    if (!field) return { values: [], error: row.field ? "" : "choose a field" };
    try {
      let values;
      if (row.mode === "range") values = expandRange(row, field, cap);
      else if (row.mode === "pick") values = row.picked.map((i) => choices(field)[i]);
      else values = splitList(row.text, field.type, !!field.enum).map((p) => typedItem(p, field));
      return { values, warning: boundsWarning(values, field) };
    } catch (error) {
      return { values: [], error: error.message };
    }
  }

  function boundsWarning(values, field) {
    const low = values.find((v) => field.minimum != null && v < field.minimum);
    if (low !== undefined) return `${low} is below the minimum of ${field.minimum}`;
    const high = values.find((v) => field.maximum != null && v > field.maximum);
    if (high !== undefined) return `${high} is above the maximum of ${field.maximum}`;
    if (field.enum && values.some((v) => !field.enum.includes(v))) {
      return `not every value is one of the ${field.enum.length} allowed`;
    }
    return "";
  }

  function choices(field) {
    if (field.enum) return field.enum;
    return field.type === "boolean" ? [true, false] : [];
  }

  function modesFor(field) {
    const modes = [["list", "List"]];
    if (field && NUMERIC.includes(field.type)) modes.push(["range", "Range"]);
    if (field && choices(field).length) modes.push(["pick", "Pick"]);
    return modes;
  }

  function evenStep(values) {
    if (values.length < 3 || !values.every((v) => typeof v === "number")) return null;
    const step = Number((values[1] - values[0]).toFixed(10));
    const even = values.every((v, i) => Math.abs(v - (values[0] + i * step)) < 1e-9);
    return even && step !== 0 ? step : null;
  }

  function rowFromEntry(entry, field) {
    const row = newRow(entry.field);
    const values = entry.values;
    const options = field ? choices(field) : [];
    const step = field && NUMERIC.includes(field.type) ? evenStep(values) : null;
    if (options.length && values.every((v) => options.includes(v))) {
      row.mode = "pick";
      row.picked = values.map((v) => options.indexOf(v));
    } else if (step !== null) {
      Object.assign(row, { mode: "range", from: values[0], to: values.at(-1), step });
    } else {
      const numeric = field && (NUMERIC.includes(field.type) || field.type === "boolean");
      row.text = values.map(show).join(numeric ? ", " : "\n");
    }
    return row;
  }

  function newRow(field = "") {
    return { id: nextId++, field, mode: "list", text: "", from: "", to: "", step: "", picked: [] };
  }

  function checkSweeps(value) {
    const ok = Array.isArray(value) && value.every((group) => Array.isArray(group) && group.every(
      (e) => e && typeof e === "object" && typeof e.field === "string" && Array.isArray(e.values)));
    if (!ok) throw new Error('expected a list of groups of {"field": …, "values": […]}');
    return value;
  }

  /** Engine JSON, one entry a line, so the Advanced view stays readable. */
  function formatSweeps(sweeps) {
    if (!sweeps.length) return "[]";
    const groups = sweeps.map((g) => "  [\n" + g.map((e) => "    " + JSON.stringify(e)).join(",\n") + "\n  ]");
    return "[\n" + groups.join(",\n") + "\n]";
  }

  const sweeps = () => ({
    fields: [], extra: [], groups: [], cap: 1000, runs: 1,
    advanced: false, jsonError: "", writing: false,

    init() {
      const data = this.$el.dataset;
      this.fields = JSON.parse(data.fields || "[]");
      this.cap = Number(data.cap || 1000);
      this.runsField = data.runsField || "runs";
      const runs = this.$el.closest("form")?.querySelector(`[name="${this.runsField}"]`);
      if (runs) this.runs = Math.max(1, Number(runs.value) || 1);
      this.load(this.$refs.json.value);
      if (this.jsonError) this.advanced = true;
      this.$watch("groups", () => this.save());
    },
    field(name) {
      return this.fields.find((f) => f.name === name) || this.extra.find((f) => f.name === name);
    },
    get fieldGroups() {
      const sections = [["Order", "order"], ["Machine parameters", "machine"]];
      const found = sections.map(([label, key]) => ({ label, fields: this.fields.filter((f) => f.group === key) }));
      found.push({ label: "Not on this machine", fields: this.extra });
      return found.filter((section) => section.fields.length);
    },
    load(text) {
      const parsed = parseJson(text, []);
      try {
        if (parsed.error) throw new Error(parsed.error);
        const value = checkSweeps(parsed.value);
        for (const name of value.flat().map((e) => e.field)) {
          if (!this.field(name)) this.extra.push({ name, label: name, type: "object", enum: null, group: "extra" });
        }
        this.groups = value.map((g) => ({ id: nextId++, rows: g.map((e) => rowFromEntry(e, this.field(e.field))) }));
        this.jsonError = "";
        this.baseline = JSON.stringify(this.engine());
      } catch (error) {
        this.jsonError = error.message;
      }
    },
    engine() {
      return this.groups
        .map((g) => g.rows.map((row) => ({ field: row.field, values: this.info(row).values }))
          .filter((e) => e.field && e.values.length))
        .filter((g) => g.length);
    },
    /** Write the textarea, unless the last thing read from it is unchanged. */
    save() {
      const next = this.engine();
      // Never overwrite JSON the user is fixing, nor what they just typed.
      if (this.jsonError || JSON.stringify(next) === this.baseline) return;
      this.baseline = JSON.stringify(next);
      writeField(this, this.$refs.json, formatSweeps(next));
    },
    jsonTyped() {
      if (this.writing) return;
      this.load(this.$refs.json.value);
    },
    discardJson() {
      this.jsonError = "";
      this.baseline = JSON.stringify(this.engine());
      writeField(this, this.$refs.json, formatSweeps(this.engine()));
    },
    watchForm(event) {
      if (event.target.name === this.runsField) this.runs = Math.max(1, Number(event.target.value) || 1);
    },

    addGroup() {
      this.groups.push({ id: nextId++, rows: [newRow()] });
      this.focusLast();
    },
    addRow(group) {
      group.rows.push(newRow());
      this.focusLast(group);
    },
    removeRow(group, row) {
      group.rows = group.rows.filter((r) => r !== row);
      if (!group.rows.length) this.groups = this.groups.filter((g) => g !== group);
    },
    removeGroup(group) {
      this.groups = this.groups.filter((g) => g !== group);
    },
    focusLast(group) {
      this.$nextTick(() => {
        const scope = group ? this.$root.querySelector(`[data-group="${group.id}"]`) : this.$root;
        const selects = scope.querySelectorAll("select[data-field-select]");
        selects[selects.length - 1]?.focus();
      });
    },
    chooseField(row) {
      const field = this.field(row.field);
      const modes = modesFor(field).map(([mode]) => mode);
      if (!modes.includes(row.mode) || (row.mode === "list" && !row.text && modes.includes("pick"))) {
        row.mode = modes.includes("pick") ? "pick" : "list";
      }
      row.picked = [];
    },
    takenElsewhere(name, row) {
      return this.groups.some((g) => g.rows.some((r) => r !== row && r.field === name));
    },
    modes(row) {
      return modesFor(this.field(row.field));
    },
    choices(row) {
      return choices(this.field(row.field) || {}).map(show);
    },
    togglePick(row, index) {
      row.picked = row.picked.includes(index)
        ? row.picked.filter((i) => i !== index)
        : [...row.picked, index].sort((a, b) => a - b);
    },
    pickAll(row, on) {
      row.picked = on ? this.choices(row).map((_, i) => i) : [];
    },
    placeholder(row) {
      const field = this.field(row.field);
      if (!field) return "";
      if (NUMERIC.includes(field.type)) return "e.g. 20, 30, 40";
      if (field.type === "object") return "one value a line; JSON allowed";
      return field.enum ? "one value a line or comma separated" : "one value a line";
    },
    info(row) {
      return rowValues(row, this.field(row.field), this.cap);
    },
    rowCount(row) {
      const info = this.info(row);
      return info.error || plural(info.values.length, "value");
    },
    preview(row) {
      const values = this.info(row).values;
      const head = values.slice(0, 8).map(show).join(", ");
      return values.length > 8 ? `${head}, … ${show(values.at(-1))}` : head;
    },
    lengths(group) {
      return group.rows.filter((r) => r.field).map((r) => this.info(r).values.length);
    },
    mismatch(group) {
      return new Set(this.lengths(group)).size > 1;
    },
    mismatchText(group) {
      const sizes = group.rows.filter((r) => r.field).map((r) => `${r.field} has ${this.info(r).values.length}`);
      return `Zipped fields need the same number of values: ${sizes.join(", ")}.`;
    },
    groupSize(group) {
      return Math.max(0, ...this.lengths(group));
    },
    groupSummary(group) {
      const named = group.rows.filter((r) => r.field);
      if (named.length < 2) return plural(this.groupSize(group), "value");
      const names = named.map((r) => r.field);
      const zipped = `zipped: ${names.slice(0, -1).join(", ")} and ${names.at(-1)} advance together`;
      return this.mismatch(group) ? zipped : `${zipped}, ${this.groupSize(group)} values each`;
    },
    get total() {
      return this.engine().reduce((n, g) => n * g[0].values.length, 1);
    },
    get summary() {
      const sizes = this.engine().map((g) => g[0].values.length);
      if (!sizes.length) return "";
      const uneven = this.groups.findIndex((g) => this.mismatch(g));
      if (uneven >= 0) return `Group ${uneven + 1} needs equal lengths before it can be counted.`;
      const product = sizes.length > 1 ? `${sizes.join(" × ")} = ` : "";
      return `${product}${plural(this.total, "combination")}`;
    },
    get runsSummary() {
      const even = !this.groups.some((g) => this.mismatch(g));
      return even && this.runs > 1 ? `× ${this.runs} runs = ${(this.total * this.runs).toLocaleString()}` : "";
    },
    get incomplete() {
      return this.groups.some((g) => g.rows.some((r) => this.info(r).error));
    },
  });

  /* ---------------------------------------------------------------- tokens */

  function tokenText(value) {
    if (typeof value !== "string") return JSON.stringify(value);
    return looseValue(value) === value ? value : JSON.stringify(value);
  }

  function kindOf(value) {
    if (value === null) return "null";
    if (Array.isArray(value)) return "list";
    return { number: "number", boolean: "true/false", string: "text" }[typeof value] || "object";
  }

  const TOKEN_NAME = /^[A-Za-z_][\w-]*$/;

  const tokens = () => ({
    rows: [], advanced: false, jsonError: "", writing: false,

    init() {
      this.load(this.$refs.json.value);
      if (this.jsonError) this.advanced = true;
      this.$watch("rows", () => this.save());
    },
    load(text) {
      const parsed = parseJson(text, {});
      const value = parsed.value;
      if (parsed.error || !value || typeof value !== "object" || Array.isArray(value)) {
        this.jsonError = parsed.error || "expected an object of name → value";
        return;
      }
      this.jsonError = "";
      this.rows = Object.entries(value).map(([key, v]) => ({ id: nextId++, key, value: tokenText(v) }));
      if (!this.rows.length) this.rows.push({ id: nextId++, key: "", value: "" });
      this.baseline = JSON.stringify(this.engine());
    },
    engine() {
      const result = {};
      for (const row of this.rows) {
        if (row.key.trim()) result[row.key.trim()] = looseValue(row.value.trim());
      }
      return result;
    },
    save() {
      const next = this.engine();
      if (this.jsonError || JSON.stringify(next) === this.baseline) return;
      this.baseline = JSON.stringify(next);
      writeField(this, this.$refs.json, JSON.stringify(next, null, 2));
    },
    jsonTyped() {
      if (!this.writing) this.load(this.$refs.json.value);
    },
    discardJson() {
      this.jsonError = "";
      this.baseline = JSON.stringify(this.engine());
      writeField(this, this.$refs.json, JSON.stringify(this.engine(), null, 2));
    },
    add(after) {
      const index = after ? this.rows.indexOf(after) + 1 : this.rows.length;
      this.rows.splice(index, 0, { id: nextId++, key: "", value: "" });
      this.$nextTick(() => this.$root.querySelectorAll("input[data-token-key]")[index]?.focus());
    },
    remove(row) {
      this.rows = this.rows.filter((r) => r !== row);
    },
    kind(row) {
      return kindOf(looseValue(row.value.trim()));
    },
    problem(row) {
      const key = row.key.trim();
      if (!key) return row.value ? "give the token a name" : "";
      if (!TOKEN_NAME.test(key)) return "a name is letters, digits, _ and -, and starts with a letter or _";
      return this.rows.filter((r) => r.key.trim() === key).length > 1 ? "this name is used twice" : "";
    },
  });

  /* ---------------------------------------------------------------- prompt */

  const TOKEN_USE = /\$\$|\$\{\s*([A-Za-z_][\w-]*)\s*\}/g;
  const WILDCARD_QUERY = /^[\w/*.-]*$/;
  const MIRRORED = ["boxSizing", "width", "fontFamily", "fontSize", "fontWeight", "lineHeight",
    "letterSpacing", "paddingTop", "paddingRight", "paddingBottom", "paddingLeft",
    "borderTopWidth", "borderLeftWidth", "borderRightWidth", "tabSize"];

  /** Where the caret sits inside a textarea, via a styled copy of it. */
  function caretPoint(textarea, index) {
    const mirror = document.createElement("div");
    const style = getComputedStyle(textarea);
    for (const name of MIRRORED) mirror.style[name] = style[name];
    Object.assign(mirror.style, { position: "absolute", visibility: "hidden", whiteSpace: "pre-wrap",
      overflowWrap: "break-word", top: "0", left: "0" });
    mirror.textContent = textarea.value.slice(0, index);
    const marker = document.createElement("span");
    marker.textContent = "\u200b";
    mirror.appendChild(marker);
    document.body.appendChild(mirror);
    const point = { top: marker.offsetTop + marker.offsetHeight - textarea.scrollTop,
      left: marker.offsetLeft - textarea.scrollLeft };
    mirror.remove();
    return point;
  }

  const prompt = () => ({
    wildcards: [], parameters: [], tokens: {}, tokensError: "", text: "",
    open: false, matches: [], active: 0, start: -1, dismissed: -1, popup: { top: 0, left: 0 },

    init() {
      const data = this.$el.dataset;
      this.wildcards = JSON.parse(data.wildcards || "[]");
      this.parameters = JSON.parse(data.parameters || "[]");
      this.tokensField = data.tokensField || "tokens";
      this.text = this.$refs.input.value;
      const field = this.$el.closest("form")?.querySelector(`[name="${this.tokensField}"]`);
      if (field) this.readTokens(field.value);
    },
    watchForm(event) {
      if (event.target.name === this.tokensField) this.readTokens(event.target.value);
    },
    readTokens(text) {
      const parsed = parseJson(text, {});
      this.tokensError = parsed.error ? "the Tokens field is not valid JSON" : "";
      this.tokens = parsed.error ? {} : parsed.value || {};
    },
    get used() {
      const names = [...this.text.matchAll(TOKEN_USE)].map((m) => m[1]).filter(Boolean);
      return [...new Set(names)].map((name) => {
        if (Object.hasOwn(this.tokens, name)) return { name, value: show(this.tokens[name]), state: "set" };
        if (this.parameters.includes(name)) return { name, value: "from the parameter", state: "parameter" };
        return { name, value: "not set", state: "missing" };
      });
    },
    typed() {
      this.text = this.$refs.input.value;
      this.suggest();
    },
    /** Offer wildcard names while the caret is inside an unclosed "__". */
    suggest() {
      const input = this.$refs.input;
      const before = input.value.slice(0, input.selectionStart);
      const opens = before.split("__").length - 1;
      const query = before.slice(before.lastIndexOf("__") + 2);
      this.start = before.lastIndexOf("__");
      const ready = opens % 2 === 1 && WILDCARD_QUERY.test(query) && input.selectionStart === input.selectionEnd;
      if (!ready || this.start === this.dismissed || !this.wildcards.length) return this.close();
      const lower = query.toLowerCase();
      const hits = this.wildcards.filter((name) => name.toLowerCase().includes(lower));
      const rank = (name) => (name.toLowerCase().startsWith(lower) ? 0 : 1);
      hits.sort((a, b) => rank(a) - rank(b));
      this.matches = hits.slice(0, 8);
      this.active = 0;
      this.open = this.matches.length > 0;
      if (this.open) this.popup = caretPoint(input, this.start);
    },
    close() {
      this.open = false;
    },
    key(event) {
      if (!this.open) return;
      const moves = { ArrowDown: 1, ArrowUp: -1 };
      if (event.key in moves) {
        this.active = (this.active + moves[event.key] + this.matches.length) % this.matches.length;
      } else if (event.key === "Enter" || event.key === "Tab") {
        this.insert(this.matches[this.active]);
      } else if (event.key === "Escape") {
        this.dismissed = this.start;
        this.close();
      } else {
        return;
      }
      event.preventDefault();
    },
    insert(name) {
      const input = this.$refs.input;
      const value = input.value;
      let end = input.selectionStart;
      end += value.slice(end).match(/^[\w/*.-]*(__)?/)[0].length;
      input.value = `${value.slice(0, this.start)}__${name}__${value.slice(end)}`;
      const caret = this.start + name.length + 4;
      input.setSelectionRange(caret, caret);
      input.focus();
      this.close();
      input.dispatchEvent(new Event("input", { bubbles: true }));
    },
  });

  document.addEventListener("alpine:init", () => {
    window.Alpine.data("afSweeps", sweeps);
    window.Alpine.data("afTokens", tokens);
    window.Alpine.data("afPrompt", prompt);
  });
})();
