package api

import (
	_ "embed"
	"net/http"
)

// openAPI describes the native API. TestOpenAPIMatchesRoutes fails when a
// route is missing from it or it lists a route the server does not have.
//
//go:embed openapi.json
var openAPI []byte

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPI)
}
