// monitor's console: the little it does without a round trip. Every page works without it.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // filters: a changed choice is a new link to share, at once
  for (const select of document.querySelectorAll("form.filters select")) {
    select.addEventListener("change", () => select.form.requestSubmit());
  }
  // playground: typing a draft chooses "a draft rule file"
  const draft = document.querySelector("textarea[name=draft]");
  if (draft) {
    draft.addEventListener("input", () => {
      const choice = document.querySelector("input[name=source][value=draft]");
      if (choice) choice.checked = true;
    });
  }
  // replay: one click is one requeue
  for (const form of document.querySelectorAll("form.replay")) {
    form.addEventListener("submit", () => {
      for (const button of form.querySelectorAll("button")) button.disabled = true;
    });
  }
});
