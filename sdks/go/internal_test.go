package identsphere

// The pure functions behind the cache and error rules, with inputs a real IdentSphere never sends.

import (
	"net/http"
	"testing"
	"time"
)

func TestMaxAgeFollowsCacheControl(t *testing.T) {
	for header, want := range map[string]time.Duration{
		"public, max-age=300":  300 * time.Second,
		"Max-Age=5":            5 * time.Second,
		`max-age="7"`:          7 * time.Second,
		"no-store":             0,
		"max-age=60, no-cache": 0,
		"public":               defaultMaxAge,
		"":                     defaultMaxAge,
		"max-age=soon":         defaultMaxAge,
		"max-age=31536000":     maxMaxAge,
	} {
		if got := maxAge(header); got != want {
			t.Errorf("maxAge(%q) = %v, want %v", header, got, want)
		}
	}
}

func TestRetryAfterReadsSecondsOrADate(t *testing.T) {
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	for header, want := range map[string]time.Duration{
		"":    0,
		"120": 2 * time.Minute,
		now.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second,
		now.Add(-time.Minute).Format(http.TimeFormat):     0,
		"soon": 0,
	} {
		if got := retryAfter(header, now); got != want {
			t.Errorf("retryAfter(%q) = %v, want %v", header, got, want)
		}
	}
}

func TestOnlyRSASignatureKeysForRS256WithAKidAreKept(t *testing.T) {
	n := "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw"
	keys := rs256Keys([]jwk{
		{Kty: "RSA", Kid: "good", Use: "sig", Alg: "RS256", N: n, E: "AQAB"},
		{Kty: "RSA", Kid: "unlabelled", N: n, E: "AQAB"},
		{Kty: "RSA", Kid: "wrong-alg", Use: "sig", Alg: "RS512", N: n, E: "AQAB"},
		{Kty: "RSA", Kid: "encryption", Use: "enc", Alg: "RS256", N: n, E: "AQAB"},
		{Kty: "RSA", Use: "sig", Alg: "RS256", N: n, E: "AQAB"},
		{Kty: "RSA", Kid: "even-exponent", N: n, E: "AAI"},
		{Kty: "RSA", Kid: "not-base64url", N: "***", E: "AQAB"},
		{Kty: "oct", Kid: "mac"},
	})
	if len(keys) != 2 || keys["good"] == nil || keys["unlabelled"] == nil || keys["good"].E != 65537 {
		t.Errorf("kept: %v", keys)
	}
}
