"""The web page: static HTML, JS and CSS shipped with the API function (no build step)."""
