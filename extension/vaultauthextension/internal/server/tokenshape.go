package server

import "strings"

// vaultTokenShape says why t cannot be a Vault token, or "" when it may be
// one, following Vault's own token formats so that Vault is asked only
// about strings it could accept:
//
//	service  hvs.<body>[.<nsid>], s.<body>[.<nsid>]  body: base62 (24 chars)
//	         or base64url without padding (longer signed tokens)
//	batch    hvb.<body>[.<nsid>], b.<body>[.<nsid>]  body: base64url without
//	         padding, a length Go's decoder accepts (not 1 mod 4)
//
// A namespace id is 1 to 5 base62 characters; outside Vault Enterprise any
// suffix names no namespace, which Vault answers as a refusal (cached).
func vaultTokenShape(t string) string {
	if len(t) > 1024 {
		return "longer than 1024 bytes"
	}
	var prefix string
	for _, p := range []string{"hvs.", "hvb.", "s.", "b."} {
		if strings.HasPrefix(t, p) {
			prefix = p
			break
		}
	}
	if prefix == "" {
		return "no hvs., hvb., s. or b. prefix"
	}
	body, ns, hasNS := strings.Cut(t[len(prefix):], ".")
	if hasNS && (len(ns) == 0 || len(ns) > 5 || !allIn(ns, isBase62)) {
		return "namespace suffix not 1 to 5 letters or digits"
	}
	if !allIn(body, isBase64URL) {
		return "characters outside base64url"
	}
	batch := prefix == "hvb." || prefix == "b."
	switch {
	case batch && (len(body) == 0 || len(body)%4 == 1):
		return "batch token body is not base64url"
	case !batch && len(body) < 24:
		return "service token body shorter than 24 characters"
	}
	return ""
}

func allIn(s string, ok func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

func isBase62(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func isBase64URL(c byte) bool { return isBase62(c) || c == '-' || c == '_' }
