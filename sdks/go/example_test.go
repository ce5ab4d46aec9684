package identsphere_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	identsphere "github.com/IdentSphere/sdks/go"
)

// baseURL is where IdentSphere answers: in these examples, the server the tests started; in an
// application, its public address (https://auth.example.com).
var baseURL string

// A resource server: the middleware verifies the access token of each request locally and the handler
// reads its claims.
func Example() {
	verifier, err := identsphere.NewVerifier(baseURL)
	if err != nil {
		log.Fatal(err)
	}
	protect := identsphere.Middleware(verifier)
	mux := http.NewServeMux()
	mux.Handle("/me", protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		claims, _ := identsphere.ClaimsFromContext(r.Context())
		fmt.Fprintf(w, "signed in with %s at %s", claims.AuthMethod, claims.AAL)
	})))
	app := httptest.NewServer(mux)
	defer app.Close()

	// A user signs up; their client calls the app with the access token.
	client, _ := identsphere.NewClient(baseURL)
	signedUp, err := client.Register(context.Background(), identsphere.RegisterParams{Email: uniqueEmail(), Password: "correct horse battery staple"})
	if err != nil {
		log.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, app.URL+"/me", nil)
	req.Header.Set("Authorization", "Bearer "+signedUp.Tokens.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body))
	// Output: 200 signed in with password at aal1
}

// Login answers with the tokens, or with the second-factor step: a normal outcome, not an error.
func ExampleClient_Login() {
	client, err := identsphere.NewClient(baseURL)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	email := uniqueEmail()
	if _, err := client.Register(ctx, identsphere.RegisterParams{Email: email, Password: "correct horse battery staple"}); err != nil {
		log.Fatal(err)
	}

	res, err := client.Login(ctx, identsphere.LoginParams{Email: email, Password: "correct horse battery staple"})
	if err != nil {
		log.Fatal(err)
	}
	if res.MFA != nil {
		// Ask the user for a code, then: client.VerifyMFA(ctx, identsphere.VerifyMFAParams{MFAToken: res.MFA.MFAToken, Code: code})
		fmt.Println("second factor due:", res.MFA.Factors)
		return
	}
	fmt.Println(res.Tokens.TokenType, res.Tokens.Session.AAL)
	// Output: Bearer aal1
}

// Every refusal is an *Error: switch on its Code.
func ExampleError() {
	client, err := identsphere.NewClient(baseURL)
	if err != nil {
		log.Fatal(err)
	}
	_, err = client.Login(context.Background(), identsphere.LoginParams{Email: uniqueEmail(), Password: "not the password"})

	var refusal *identsphere.Error
	if errors.As(err, &refusal) {
		switch refusal.Code {
		case identsphere.CodeInvalidCredentials:
			fmt.Println(refusal.Status, refusal.Code, refusal.Type)
		case identsphere.CodeRateLimited:
			fmt.Println("retry in", refusal.RetryAfter)
		}
	}
	// Output: 401 invalid_credentials authentication_error
}

// Verify checks a token without the middleware, e.g. in a gRPC interceptor or a message consumer.
func ExampleVerifier_Verify() {
	verifier, err := identsphere.NewVerifier(baseURL)
	if err != nil {
		log.Fatal(err)
	}
	client, _ := identsphere.NewClient(baseURL)
	signedUp, err := client.Register(context.Background(), identsphere.RegisterParams{Email: uniqueEmail(), Password: "correct horse battery staple"})
	if err != nil {
		log.Fatal(err)
	}

	claims, err := verifier.Verify(context.Background(), signedUp.Tokens.AccessToken)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(claims.Typ, claims.Sub == signedUp.Tokens.User.ID, claims.Org == signedUp.Tokens.Session.OrganizationID)
	// Output: access true true
}

// A route that needs a second factor refuses an aal1 session with IdentSphere's own envelope.
func ExampleRequireAAL2() {
	verifier, err := identsphere.NewVerifier(baseURL)
	if err != nil {
		log.Fatal(err)
	}
	sensitive := identsphere.Middleware(verifier, identsphere.RequireAAL2())(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "moved the money")
	}))
	client, _ := identsphere.NewClient(baseURL)
	signedUp, err := client.Register(context.Background(), identsphere.RegisterParams{Email: uniqueEmail(), Password: "correct horse battery staple"})
	if err != nil {
		log.Fatal(err)
	}

	req := httptest.NewRequest(http.MethodPost, "/transfer", nil)
	req.Header.Set("Authorization", "Bearer "+signedUp.Tokens.AccessToken)
	w := httptest.NewRecorder()
	sensitive.ServeHTTP(w, req)
	fmt.Println(w.Code, w.Body.String())
	// Output: 403 {"error":{"code":"insufficient_aal","message":"this action needs a session verified with a second factor","type":"permission_error"}}
}

// With the revocation feed, a logout reaches the Verifier within the poll interval, although the token's
// signature stays valid until it expires.
func ExampleRevocationFeed() {
	ctx, stop := context.WithCancel(context.Background())
	defer stop() // stops the feed's poller
	feed, err := identsphere.NewRevocationFeed(baseURL, platformKey, identsphere.WithPollInterval(200*time.Millisecond))
	if err != nil {
		log.Fatal(err)
	}
	if err := feed.Start(ctx); err != nil {
		log.Print(err) // the feed is not read yet; it keeps polling
	}
	verifier, err := identsphere.NewVerifier(baseURL, identsphere.WithRevocations(feed))
	if err != nil {
		log.Fatal(err)
	}

	client, _ := identsphere.NewClient(baseURL)
	signedUp, err := client.Register(ctx, identsphere.RegisterParams{Email: uniqueEmail(), Password: "correct horse battery staple"})
	if err != nil {
		log.Fatal(err)
	}
	token := signedUp.Tokens.AccessToken
	if err := client.Logout(ctx, identsphere.LogoutParams{AccessToken: token}); err != nil {
		log.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		_, err := verifier.Verify(ctx, token)
		var refusal *identsphere.Error
		if errors.As(err, &refusal) {
			fmt.Println(refusal.Code)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Output: token_revoked
}
