package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
)

// nexusPage is what Nexus answers for a path that is not a repository's
// Docker API: its web UI's HTML.
const nexusPage = `<!DOCTYPE html>
<html lang="en">
<head><title>Nexus Repository Manager</title></head>
<body><div class="nexus-header">Sonatype Nexus Repository</div>
<p>404 - Not Found: %s</p></body>
</html>
`

// groupDenied is Nexus OSS's answer to a push to a group repository
// (GroupHandler.INSUFFICIENT_LICENSE; Docker prints it as "denied: …").
const groupDenied = "Deploying to groups is a PRO-licensed feature. See https://links.sonatype.com/product-nexus-repository"

// runNexus serves the registry API of upstream under /repository/<repo>/
// and /repository/<group>/ (pull only: a push is refused as Nexus OSS does
// for a group), and Nexus's HTML 404 page for every other path, as a
// reverse proxy in front of Nexus's HTTP port would show it.
func runNexus(args []string) error {
	var addr, upstream, repo, group string
	err := flags("nexus", args, func(fs *flag.FlagSet) {
		fs.StringVar(&addr, "addr", "127.0.0.1:5010", "listen address")
		fs.StringVar(&upstream, "upstream", "http://127.0.0.1:5001", "the registry behind it")
		fs.StringVar(&repo, "repo", "hub", "a repository served read-write")
		fs.StringVar(&group, "group", "group", "a group repository (pushes refused)")
	})
	if err != nil {
		return err
	}
	up, err := url.Parse(upstream)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	for _, name := range []string{repo, group} {
		prefix := "/repository/" + name
		rp := prefixProxy(up, prefix)
		isGroup := name == group
		mux.HandleFunc(prefix+"/v2/", func(w http.ResponseWriter, r *http.Request) {
			if isGroup && r.Method != http.MethodGet && r.Method != http.MethodHead {
				log.Printf("nexus %s %s: 403 DENIED (group)", r.Method, r.URL.Path)
				writeErr(w, http.StatusForbidden, "DENIED", groupDenied)
				return
			}
			rp.ServeHTTP(w, r)
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		log.Printf("nexus %s %s: 404 HTML", r.Method, r.URL.Path)
		w.Header().Set("Content-Type", "text/html;charset=UTF-8")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, nexusPage, htmlEscape(r.URL.Path))
	})
	log.Printf("nexus stand-in on %s: /repository/%s/v2/ and /repository/%s/v2/ (pull only) -> %s", addr, repo, group, upstream)
	return http.ListenAndServe(addr, mux)
}

// prefixProxy strips prefix before forwarding and puts it back on the
// Location headers the registry sends (nginx's proxy_redirect).
func prefixProxy(up *url.URL, prefix string) http.Handler {
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(up)
			pr.Out.URL.Path = strings.TrimPrefix(pr.In.URL.Path, prefix)
			pr.Out.URL.RawPath = ""
			pr.Out.Host = up.Host
			pr.SetXForwarded()
		},
		ModifyResponse: func(resp *http.Response) error {
			if loc := resp.Header.Get("Location"); strings.HasPrefix(loc, "/v2/") {
				resp.Header.Set("Location", prefix+loc)
			}
			log.Printf("nexus %s %s: %d", resp.Request.Method, prefix+resp.Request.URL.RequestURI(), resp.StatusCode)
			return nil
		},
	}
	return rp
}

func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}

// runUI answers every path with 200 and an HTML page: a registry's web UI
// (a single-page app) at the URL someone copied from the browser.
func runUI(args []string) error {
	var addr string
	if err := flags("ui", args, func(fs *flag.FlagSet) { fs.StringVar(&addr, "addr", "127.0.0.1:5011", "listen address") }); err != nil {
		return err
	}
	log.Printf("web UI stand-in on %s", addr)
	return http.ListenAndServe(addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.Printf("ui %s %s: 200 HTML", r.Method, r.URL.Path)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, "<!DOCTYPE html>\n<html><head><title>Registry UI</title></head><body><div id=\"app\"></div></body></html>\n")
	}))
}

// runTLS is a TLS front for a registry, with a certificate from `certs`.
func runTLS(args []string) error {
	var addr, cert, key, upstream string
	err := flags("tls", args, func(fs *flag.FlagSet) {
		fs.StringVar(&addr, "addr", "127.0.0.1:5443", "listen address")
		fs.StringVar(&cert, "cert", "", "server certificate")
		fs.StringVar(&key, "key", "", "server key")
		fs.StringVar(&upstream, "upstream", "http://127.0.0.1:5001", "the registry behind it")
	})
	if err != nil {
		return err
	}
	up, err := url.Parse(upstream)
	if err != nil {
		return err
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return err
	}
	srv := &http.Server{Addr: addr, Handler: prefixProxy(up, ""), TLSConfig: &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}}
	log.Printf("TLS front on %s -> %s", addr, upstream)
	return srv.ListenAndServeTLS("", "")
}
