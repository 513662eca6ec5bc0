// Progressive enhancement only: every page works without JavaScript.
document.addEventListener("DOMContentLoaded", () => {
  // A partner logo that cannot load is hidden rather than shown broken.
  for (const logo of document.querySelectorAll("img.brand-logo")) {
    const hide = () => { logo.hidden = true; };
    if (logo.complete && logo.naturalWidth === 0) hide();
    logo.addEventListener("error", hide);
  }
  // "Copy" buttons next to the webhook secret.
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.addEventListener("click", async () => {
      const field = document.getElementById(button.dataset.copy);
      if (!field) return;
      field.select();
      try {
        await navigator.clipboard.writeText(field.value);
        button.textContent = "Copied";
      } catch {
        button.textContent = "Select and copy";
      }
    });
  }
});
