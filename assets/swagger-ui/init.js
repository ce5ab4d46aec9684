// IdentSphere's API reference: Swagger UI on this server's own /openapi.json. Requests from "Try it out" go to
// this same origin, so the CSRF check admits them and cookies from a sign-in here authenticate them.
window.addEventListener("load", () => {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#reference",
    deepLinking: true,
    tryItOutEnabled: false,
    withCredentials: true,
  });
});
