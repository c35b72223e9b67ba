/* The products grid's side panel, its lightbox and the tag input.
 *
 * productPanel() is mixed into the grid's Alpine component (curation.js),
 * so the panel shares the focused card and the keys. The panel partial is
 * fetched with htmx into #af-panel; its sections post their own edits.
 */
(function () {
  "use strict";

  const MAX_ZOOM = 16;
  const DRAG_SLOP = 4;

  function productPanel() {
    return {
      panel: { pk: null, favorite: false, rating: "" },
      lightbox: false,
      pendingFocus: null,
      zoom: { scale: 1, x: 0, y: 0 },
      dragging: null,

      slot() {
        return document.getElementById("af-panel");
      },
      /* The panel follows the card's own state after each card swap. */
      syncPanel() {
        const card = this.panel.pk && this.card(this.panel.pk);
        if (!card) return;
        this.panel.favorite = card.dataset.favorite === "true";
        this.panel.rating = card.dataset.rating;
      },
      openPanel(pk = this.focusedPk, focus = null) {
        const card = this.card(pk);
        if (!card) return;
        this.focusedPk = pk;
        this.pendingFocus = focus;
        if (this.panel.pk === pk && this.slot().querySelector(`[data-panel][data-pk="${pk}"]`)) {
          this.applyPendingFocus();
          return;
        }
        this.panel.pk = pk;
        this.syncPanel();
        this.zoom = { scale: 1, x: 0, y: 0 };
        htmx.ajax("GET", card.dataset.panelUrl, {
          source: this.slot(), target: this.slot(), swap: "innerHTML",
        });
      },
      closePanel() {
        this.lightbox = false;
        this.panel.pk = null;
        this.slot().innerHTML = "";
        const card = this.card();
        if (card) card.scrollIntoView({ block: "nearest" });
      },
      applyPendingFocus() {
        const id = { tags: "af-tag-input" }[this.pendingFocus];
        this.pendingFocus = null;
        if (id) document.getElementById(id)?.focus();
      },
      /* Previous or next card of this page, the panel following it. */
      step(delta) {
        const pks = this.pks();
        const at = pks.indexOf(this.panel.pk ?? this.focusedPk);
        const next = at + delta;
        if (next < 0 || next >= pks.length) return;
        this.card(pks[next]).scrollIntoView({ block: "nearest" });
        this.openPanel(pks[next]);
      },
      cardClick(event, pk) {
        if (event.shiftKey || event.ctrlKey || event.metaKey || event.button !== 0) return;
        if (event.target.closest("button, input, label, audio, .af-card__stars")) return;
        event.preventDefault();
        this.openPanel(pk);
      },
      cardDoubleClick(event, pk) {
        if (event.target.closest("button, input, label, audio")) return;
        this.openPanel(pk);
        this.openLightbox();
      },

      openLightbox() {
        if (!this.focusedPk) return;
        if (this.panel.pk !== this.focusedPk) this.openPanel(this.focusedPk);
        this.lightbox = true;
        this.$nextTick(() => this.fit());
      },
      closeLightbox() {
        this.lightbox = false;
        document.querySelectorAll(".af-lightbox video").forEach((video) => video.pause());
      },
      image() {
        return document.querySelector("#af-lightbox [data-lightbox-image]");
      },
      /* Scale 1 is the picture fitted to the screen. */
      fit() {
        this.zoom = { scale: 1, x: 0, y: 0 };
      },
      /* The scale showing one image pixel per screen pixel. The image box
       * fills the stage and its picture is contained in it. */
      actualScale() {
        const image = this.image();
        if (!image || !image.naturalWidth || !image.clientWidth) return 1;
        return 1 / Math.min(image.clientWidth / image.naturalWidth,
          image.clientHeight / image.naturalHeight);
      },
      actualSize() {
        this.zoom = { scale: this.actualScale(), x: 0, y: 0 };
      },
      zoomLabel() {
        const image = this.image();
        if (this.zoom.scale === 1) return "Fit";
        if (!image || !image.naturalWidth) return "";
        return `${Math.round((this.zoom.scale / this.actualScale()) * 100)}%`;
      },
      /* Zoom by factor, keeping the point (px, py) from the stage centre still. */
      zoomBy(factor, px = 0, py = 0) {
        const old = this.zoom.scale;
        const actual = this.actualScale();
        const scale = Math.min(MAX_ZOOM * actual, Math.max(Math.min(1, actual), old * factor));
        if (scale === 1) { this.fit(); return; }
        const ratio = scale / old;
        this.zoom = {
          scale,
          x: px - ratio * (px - this.zoom.x),
          y: py - ratio * (py - this.zoom.y),
        };
      },
      fromCentre(event) {
        const box = event.currentTarget.getBoundingClientRect();
        return [event.clientX - box.left - box.width / 2, event.clientY - box.top - box.height / 2];
      },
      onWheel(event) {
        if (!this.image()) return;
        this.zoomBy(event.deltaY < 0 ? 1.15 : 1 / 1.15, ...this.fromCentre(event));
      },
      onPointerDown(event) {
        if (!this.image() || event.button !== 0 || event.target.closest("button")) return;
        this.dragging = {
          x: event.clientX, y: event.clientY, moved: false, from: { ...this.zoom },
          onImage: event.target === this.image(),
        };
        event.currentTarget.setPointerCapture(event.pointerId);
      },
      onPointerMove(event) {
        const drag = this.dragging;
        if (!drag) return;
        const dx = event.clientX - drag.x;
        const dy = event.clientY - drag.y;
        if (Math.abs(dx) + Math.abs(dy) > DRAG_SLOP) drag.moved = true;
        if (drag.moved && this.zoom.scale !== 1) {
          this.zoom = { ...this.zoom, x: drag.from.x + dx, y: drag.from.y + dy };
        }
      },
      /* A click without a drag zooms to 100% there, or back to fit. */
      onPointerUp(event) {
        const drag = this.dragging;
        this.dragging = null;
        if (!drag || drag.moved) return;
        if (!drag.onImage) return;  // pointer capture retargets the up event
        if (this.zoom.scale !== 1) { this.fit(); return; }
        const actual = this.actualScale();
        this.zoomBy(actual > 1.2 ? actual : 2, ...this.fromCentre(event));
      },

      /* Keys for the panel and the lightbox; true when the key was used. */
      panelKey(event) {
        const key = event.key;
        if (key === "Escape") {
          if (this.lightbox) this.closeLightbox();
          else if (this.panel.pk) this.closePanel();
          else return false;
          return true;
        }
        if (this.lightbox && (key === "ArrowLeft" || key === "ArrowRight")) {
          this.step(key === "ArrowLeft" ? -1 : 1);
          return true;
        }
        if (this.lightbox && (key === "+" || key === "=")) { this.zoomBy(1.25); return true; }
        if (this.lightbox && key === "-") { this.zoomBy(1 / 1.25); return true; }
        const lower = key.toLowerCase();
        if (lower === "l") {
          if (this.lightbox) this.closeLightbox(); else this.openLightbox();
          return true;
        }
        if (lower === "t" && this.card()?.dataset.ratingUrl) {
          this.openPanel(this.focusedPk, "tags");
          return true;
        }
        if (key === "Enter" || key === " ") {
          this.openPanel();
          return true;
        }
        return false;
      },
    };
  }

  /* Suggests existing tags as one types; Enter adds the chosen or typed one. */
  function tagInput(suggestUrl, tagsUrl, listId) {
    return {
      query: "",
      options: [],
      active: -1,
      open: false,

      async suggest() {
        const text = this.query.trim();
        let names = [];
        if (text) {
          const response = await fetch(`${suggestUrl}?q=${encodeURIComponent(text)}`, {
            credentials: "same-origin", headers: { Accept: "application/json" },
          });
          if (response.ok) names = (await response.json()).tags;
        }
        if (text !== this.query.trim()) return;  // a newer keystroke won
        const taken = this.taken();
        const options = names.filter((name) => !taken.includes(name.toLowerCase()))
          .map((name) => ({ name, create: false }));
        const exists = names.some((name) => name.toLowerCase() === text.toLowerCase());
        if (text && !exists && !taken.includes(text.toLowerCase())) {
          options.push({ name: text, create: true });
        }
        this.options = options;
        this.active = options.length ? 0 : -1;
        this.open = options.length > 0;
      },
      taken() {
        const list = document.getElementById(listId);
        return list ? [...list.querySelectorAll("[data-tag]")].map((chip) => chip.dataset.tag.toLowerCase()) : [];
      },
      /* The list is swapped only on success; otherwise the text stays to fix. */
      async choose(name) {
        const list = document.getElementById(listId);
        if (!name.trim() || !list) return;
        this.open = false;
        await htmx.ajax("POST", tagsUrl, {
          source: list, target: list, swap: "outerHTML", values: { add: name },
        });
        if (document.getElementById(listId) !== list) {
          this.query = "";
          this.options = [];
        }
      },
      onKey(event) {
        const key = event.key;
        if (key === "ArrowDown" || key === "ArrowUp") {
          if (!this.options.length) return;
          const step = key === "ArrowDown" ? 1 : -1;
          this.active = (this.active + step + this.options.length) % this.options.length;
          this.open = true;
        } else if (key === "Enter" || (key === "," && this.query.trim())) {
          const option = this.open ? this.options[this.active] : null;
          this.choose(option ? option.name : this.query);
        } else if (key === "Escape") {
          if (this.open) this.open = false; else event.target.blur();
        } else {
          return;
        }
        event.preventDefault();
        event.stopPropagation();
      },
    };
  }

  window.afProductPanel = productPanel;
  document.addEventListener("alpine:init", () => {
    window.Alpine.data("tagInput", tagInput);
  });
})();
