// Progressive enhancement only: every page works without JavaScript.
document.addEventListener("DOMContentLoaded", () => {
  // The customer's e-mailed sign-in link carries its one-time token in the fragment
  // (never sent to a server, so never in an access log): post it, then forget it.
  // Also when the link opens over this very page (only the fragment changes).
  const tokenForm = document.querySelector("form[data-token-from-fragment]");
  const postFragmentToken = () => {
    const token = new URLSearchParams(window.location.hash.slice(1)).get("token");
    if (!tokenForm || !token) return;
    tokenForm.elements.token.value = token;
    history.replaceState(null, "", window.location.pathname);
    tokenForm.submit();
  };
  postFragmentToken();
  window.addEventListener("hashchange", postFragmentToken);
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
