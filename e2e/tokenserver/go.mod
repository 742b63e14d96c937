module github.com/mirrorctl/mirrorctl/e2e/tokenserver

go 1.24.13
