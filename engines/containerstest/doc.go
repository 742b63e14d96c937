// Package containerstest judges what mirrorctl's containers engine writes
// with the containers/image library itself (go.podman.io/image/v5, which
// CRI-O, Podman, Buildah and Skopeo are built on): the registries.conf.d
// drop-in through sysregistriesv2, the auth.json files through
// pkg/docker/config. It is a module of its own so that containers/image
// and its dependencies stay out of mirrorctl's go.mod; `make test` runs it.
package containerstest
