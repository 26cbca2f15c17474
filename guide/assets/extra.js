// The plots inside the notebook pages (images that mkdocs-jupyter inlines, which the glightbox
// plugin does not wrap): a tap opens them full size, in the same lightbox as the other figures.
document.addEventListener("DOMContentLoaded", function () {
  if (typeof GLightbox !== "function") return;
  document.querySelectorAll(".jp-RenderedImage img").forEach(function (image) {
    if (image.closest("a")) return;
    image.classList.add("zoomable");
    image.addEventListener("click", function () {
      GLightbox({elements: [{href: image.src, type: "image"}], zoomable: true, touchNavigation: true}).open();
    });
  });
});
