// Package identsphere is the Go server-side SDK of IdentSphere, a multi-tenant authentication service:
// a typed client of its REST API, a local verifier of its access tokens, net/http middleware, and its
// revocation feed. It uses the standard library alone.
//
//	import identsphere "github.com/IdentSphere/sdks/go"
//
// # Client
//
// A Client calls the API on a user's behalf: Register, Login, Refresh (and, with Organization, switch
// organization), Logout, Session, VerifyMFA, and the account calls ForgotPassword, ResetPassword,
// ChangePassword and VerifyEmail. Every call takes a context. Login answers with the tokens or, when a
// second factor is due, with an MFARequired result: a normal outcome, not an error. Every refusal of
// IdentSphere is an *Error carrying the catalog's Code, the Status, Type, Message, Param, the RequestID
// (X-Request-Id) and RetryAfter; get it with errors.As and switch on Code.
//
// # Verifier and Middleware
//
// A Verifier checks access tokens locally against IdentSphere's JWKS, with IdentSphere's own rules (RS256
// only, header typ JWT, claim typ access, iss, exp with an optional leeway, kid required), and returns
// their Claims. Middleware wraps an http.Handler with it: the token comes from Authorization: Bearer or
// the identsphere_at cookie, the handler reads the claims with ClaimsFromContext, and refusals are
// IdentSphere's error envelope with its status codes. RequireAAL2 and RequireOrganization add the checks
// of a route that needs a second factor or one organization.
//
// # Revocation feed
//
// An access token stays valid until it expires, even after a logout. A RevocationFeed, started with a
// platform API key, polls GET /v1/revocations and makes the Verifiers given it with WithRevocations
// refuse revoked tokens (token_revoked) within the poll interval. It stops with the context given to
// Start.
package identsphere
