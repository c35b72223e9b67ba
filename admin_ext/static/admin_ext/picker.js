/* Machine picker: filters the cards as the search box is typed into. */
document.addEventListener("alpine:init", () => {
  Alpine.data("machinePicker", () => ({
    q: "",

    init() {
      this.q = this.$el.dataset.query || "";
    },

    terms() {
      return this.q.toLowerCase().split(/\s+/).filter(Boolean);
    },

    matches(card) {
      const text = card.dataset.search || "";
      return this.terms().every((term) => text.includes(term));
    },

    /* Whether any card inside `el` matches: hides empty groups. */
    anyMatch(el) {
      const cards = el.querySelectorAll("[data-search]");
      return [...cards].some((card) => this.matches(card));
    },

    /* Enter with exactly one usable match opens it; otherwise ?q= reloads. */
    openSingleMatch(event) {
      const links = [...this.$root.querySelectorAll("[data-search]")]
        .filter((card) => this.matches(card))
        .map((card) => card.querySelector("a.picker-link"));
      if (links.length === 1 && links[0]) {
        event.preventDefault();
        window.location.href = links[0].href;
      }
    },

    /* "/" focuses the search, unless typing somewhere already. */
    focusSearch(event) {
      const target = event.target;
      const typing = ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName)
        || target.isContentEditable;
      if (event.key === "/" && !typing && !event.ctrlKey && !event.metaKey) {
        event.preventDefault();
        document.getElementById("picker-search").focus();
      }
    },
  }));
});
