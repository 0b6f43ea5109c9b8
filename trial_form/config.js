// The one file a vendor edits (see README.md). A script rather than a JSON file because Chromium
// refuses fetch() of a file next to a page opened from disk; a script loads from file:// and https
// alike. It only sets data: trial-form.js checks every value before using it.
window.TRIAL_FORM_CONFIG = {
  // Where the offline service answers: scheme, host, port and any path prefix, no trailing slash.
  apiBaseUrl: "http://127.0.0.1:8000",

  // Optional: the customer portal's address. When set, the page links to it where it sends people
  // there (an activation request given to this trial page); when left out, it names it in words.
  // portalUrl: "https://portal.example.com/activate",

  // The products offered, in this order. id: the product id (`offline-service product list`).
  // jwks (optional): the product's public keys, exactly as `offline-service keys jwks --product ID`
  // prints them. When given, responses are verified against these keys only; when left out, the
  // page fetches them from the service's /.well-known/jwks.json.
  products: [
    { name: "Demo App", id: "prod_REPLACE_WITH_THE_DEMO_PRODUCT_ID" },
  ],
};
