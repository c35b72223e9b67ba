/* The products grid: selection, keyboard curation and refused edits.
 *
 * Django's actions.js binds only table rows, so the grid keeps its own
 * selection (the checkboxes are still the `_selected_action` inputs the
 * actions read). Ctrl/Cmd shortcuts are left to unfold. The side panel
 * and the lightbox (panel.js) are mixed into the same component.
 */
(function () {
  "use strict";

  const TYPING = "input:not([type=checkbox]):not([type=radio]), textarea, select, [contenteditable]";
  const MOVES = { ArrowLeft: -1, ArrowRight: 1 };

  function productGrid() {
    return {
      ...window.afProductPanel(),
      density: this.$persist("medium").as("af-products-density"),
      selected: [],
      across: false,
      matching: 0,
      focusedPk: null,
      anchorPk: null,
      help: false,

      init() {
        const first = this.cards()[0];
        if (first) this.focusedPk = first.dataset.pk;
        const grid = this.grid();
        if (!grid) return;
        this.matching = Number(grid.dataset.matching || 0);
        this.$watch("selected", () => {
          if (!this.allSelected()) this.across = false;
          this.showCount();
        });
        this.$watch("across", (on) => {
          this.markAcross(on);
          this.showCount();
        });
        grid.addEventListener("htmx:afterSettle", (event) => {
          const target = event.detail.target;
          if (target.id === "af-panel") this.applyPendingFocus();
          if (!target.matches?.("[data-card]") && !event.detail.elt?.matches?.("[data-card]")) return;
          this.syncPanel();
          /* Settling put back the new card's server-side class over the
           * focus and selection rings Alpine had bound: bind them again. */
          this.selected = [...this.selected];
        });
      },

      /* Jump a card's tune to where the pointer is on its bar, and play. */
      seekAudio(audio, track, event) {
        const box = track.getBoundingClientRect();
        const at = Math.min(1, Math.max(0, (event.clientX - box.left) / box.width));
        const jump = () => { audio.currentTime = at * audio.duration; audio.play(); };
        if (audio.readyState >= 1 && audio.duration) return jump();
        audio.preload = "auto";
        audio.addEventListener("loadedmetadata", jump, { once: true });
        audio.load();
      },

      /* Not $root: inside a card that is the card's own x-data. */
      grid() {
        return document.getElementById("product-grid");
      },
      cards() {
        return [...this.grid().querySelectorAll("[data-card]")];
      },
      pks() {
        return this.cards().map((card) => card.dataset.pk);
      },
      card(pk = this.focusedPk) {
        return this.grid().querySelector(`[data-card][data-pk="${pk}"]`);
      },
      allSelected() {
        const pks = this.pks();
        return pks.length > 0 && pks.every((pk) => this.selected.includes(pk));
      },
      toggleAll() {
        this.selected = this.allSelected() ? [] : this.pks();
      },
      /* Offered once the whole page is chosen and more products match. */
      canSelectAcross() {
        return !this.across && this.allSelected() && this.matching > this.pks().length;
      },
      clearSelection() {
        this.across = false;
        this.selected = [];
      },
      /* The action form's select_across field, which Django reads. */
      markAcross(on) {
        const field = document.querySelector("#changelist-form input.select-across");
        if (!field) return;
        field.value = on ? "1" : "0";
        field.dispatchEvent(new Event("input", { bubbles: true }));
      },
      focusCard(pk) {
        this.focusedPk = pk;
      },

      /* Django's counter text, which actions.js would keep for a table. */
      showCount() {
        const counter = document.querySelector("#changelist-form .action-counter");
        if (!counter) return;
        const total = counter.dataset.actionsIcnt || this.cards().length;
        counter.textContent = this.across
          ? `All ${this.matching} matching selected`
          : `${this.selected.length} of ${total} selected`;
      },

      /* Select (or with on=false, unselect) from the anchor to pk. */
      selectRange(pk, on = true) {
        const pks = this.pks();
        const from = pks.indexOf(this.anchorPk ?? pk);
        const to = pks.indexOf(pk);
        const range = pks.slice(Math.min(from, to), Math.max(from, to) + 1);
        this.selected = on
          ? [...new Set([...this.selected, ...range])]
          : this.selected.filter((other) => !range.includes(other));
      },
      toggleSelected(pk) {
        this.selected = this.selected.includes(pk)
          ? this.selected.filter((other) => other !== pk)
          : [...this.selected, pk];
        this.anchorPk = pk;
      },
      /* The box has its new state already; x-model records it on change. */
      selectClick(event, pk) {
        this.focusedPk = pk;
        if (event.shiftKey && this.anchorPk) this.selectRange(pk, event.target.checked);
        else this.anchorPk = pk;
      },
      /* Shift-click on a picture selects; a plain click opens the panel
       * (the card's own handler), Ctrl/Cmd-click the full page. */
      openCard(event, pk) {
        if (!event.shiftKey) {
          if (!event.ctrlKey && !event.metaKey && event.button === 0) event.preventDefault();
          return;
        }
        event.preventDefault();
        this.focusedPk = pk;
        if (this.anchorPk) this.selectRange(pk);
        else this.toggleSelected(pk);
      },

      columns(cards) {
        const top = cards[0].offsetTop;
        const count = cards.findIndex((card) => card.offsetTop !== top);
        return count === -1 ? cards.length : count;
      },
      move(key) {
        const cards = this.cards();
        if (!cards.length) return;
        const pks = cards.map((card) => card.dataset.pk);
        const at = Math.max(0, pks.indexOf(this.focusedPk));
        const step = MOVES[key] ?? (key === "ArrowUp" ? -1 : 1) * this.columns(cards);
        const next = Math.min(cards.length - 1, Math.max(0, at + step));
        this.focusedPk = pks[next];
        cards[next].scrollIntoView({ block: "nearest" });
        if (this.panel?.pk && this.panel.pk !== pks[next]) this.openPanel(pks[next]);
      },

      rate(value) {
        const card = this.card();
        if (!card || !card.dataset.ratingUrl) return;
        htmx.ajax("POST", card.dataset.ratingUrl, {
          source: card, target: card, swap: "outerHTML",
          values: { rating: value },
        });
      },
      favorite() {
        const button = this.card()?.querySelector("[data-favorite-toggle]");
        if (button) button.click();
      },
      onKey(event) {
        if (event.ctrlKey || event.metaKey || event.altKey) return;
        if (event.target.closest && event.target.closest(TYPING)) return;
        if (modalOpen()) return;
        const key = event.key;
        if (key === "Escape" && this.help) { this.help = false; return; }
        if (key === "?") { this.help = !this.help; event.preventDefault(); return; }
        if (this.help) return;
        /* Enter and Space on a focused link or button keep their own meaning. */
        if ((key === "Enter" || key === " ") && event.target.closest("a:not(.af-card__media), button, summary")) return;
        if (this.focusedPk && this.panelKey(event)) { event.preventDefault(); return; }
        if (key.startsWith("Arrow")) { this.move(key); event.preventDefault(); return; }
        if (!this.focusedPk) return;
        const lower = key.toLowerCase();
        if (lower === "f") this.favorite();
        else if (lower === "x") this.toggleSelected(this.focusedPk);
        else if (key >= "1" && key <= "5" && key.length === 1) this.rate(key);
        else if (key === "0") this.rate("");
        else return;
        event.preventDefault();
      },
    };
  }

  /* Unfold's dialog (Vary seed) is open: its keys are its own. */
  function modalOpen() {
    const overlay = document.getElementById("modal-overlay");
    return Boolean(overlay) && getComputedStyle(overlay).display !== "none";
  }

  document.addEventListener("alpine:init", () => {
    window.Alpine.data("productGrid", productGrid);
  });

  /* A refused panel edit puts its control back to the saved value. */
  function revert(target) {
    target.querySelectorAll("select").forEach((select) => {
      [...select.options].forEach((option) => { option.selected = option.defaultSelected; });
    });
    target.querySelectorAll("textarea").forEach((area) => { area.value = area.defaultValue; });
  }

  /* A refused edit keeps the card as it was and says why. */
  let toastTimer = null;
  function toast(message) {
    const box = document.getElementById("af-grid-toast");
    if (!box) return;
    box.textContent = message;
    box.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { box.hidden = true; }, 5000);
  }

  document.addEventListener("htmx:beforeSwap", (event) => {
    const status = event.detail.xhr.status;
    const target = event.detail.target;
    if (status < 400 || !target || !target.closest || !target.closest("[data-card], [data-panel], #af-panel")) return;
    event.detail.shouldSwap = false;
    revert(target);
    const text = event.detail.xhr.getResponseHeader("Content-Type")?.startsWith("text/plain")
      ? event.detail.xhr.responseText : "";
    toast(text || "That change was not saved. Reload the page and try again.");
  });
  document.addEventListener("htmx:sendError", (event) => {
    if (event.detail.elt && event.detail.elt.closest && event.detail.elt.closest("[data-card], [data-panel], #af-panel")) {
      toast("The server could not be reached; nothing was changed.");
    }
  });
})();
