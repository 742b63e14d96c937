package spec

import (
	"fmt"

	"gopkg.in/yaml.v3"
)

// YAML aliases (`*a`) and merge keys (`<<: *a`, which k3s's yaml.v2
// honours) let a file of a few hundred bytes stand for a tree of billions
// of nodes: 8 levels of `<<: [*a, *a, ...]` took minutes and gigabytes to
// walk. yaml.v3 builds its Node tree without expanding anything; the
// parser expands as it walks, so it counts: resolving an alias charges the
// size of the subtree it stands for, and a document may expand to at most
// its budget, proportional to its own size. Past that the alias is an
// error and stands for null.

// minExpansion is the budget of every document, however small: far more
// than anchors are used for (a shared mirror entry or auth block), far less
// than takes noticeable time to walk.
const minExpansion = 10_000

// expansionPerNode is the budget per node of the document itself, so that
// a large spec that shares blocks widely still fits.
const expansionPerNode = 4

// setBudget sizes the budget to the document.
func (p *parser) setBudget(doc *yaml.Node) {
	p.budget = max(minExpansion, expansionPerNode*p.size(doc))
}

// size counts the nodes of a subtree without following aliases (an alias
// counts as one node; expanding it is charged when it is resolved).
func (p *parser) size(n *yaml.Node) int {
	if s, ok := p.sizes[n]; ok {
		return s
	}
	// Iterative: yaml.v3 nests as deep as the file does.
	total := 0
	stack := []*yaml.Node{n}
	for len(stack) > 0 {
		top := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		total++
		if top.Kind != yaml.AliasNode {
			stack = append(stack, top.Content...)
		}
	}
	if p.sizes == nil {
		p.sizes = map[*yaml.Node]int{}
	}
	p.sizes[n] = total
	return total
}

// resolve returns what an alias stands for (any other node as it is),
// charging its size to the budget. Over budget, it reports the alias once
// and returns a null node in its place.
func (p *parser) resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil; i++ {
		if p.refused >= 0 || i >= maxMerge {
			return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line, Column: n.Column}
		}
		target := n.Alias
		if size := p.size(target); p.expanded+size > p.budget {
			// Recorded past maxErrors too: it is the one that matters.
			p.errs = append(p.errs, &Error{Pos: p.pos(n),
				Msg: fmt.Sprintf("alias *%s (anchor &%s at %s): aliases and merge keys expand to more than %d nodes in this file",
					n.Value, target.Anchor, p.pos(target), p.budget),
				Hint: "write the repeated parts out, or share them with fewer and less nested aliases and merge keys (<<)"})
			p.refused = len(p.errs) - 1
			continue
		}
		p.expanded += p.size(target)
		n = target
	}
	return n
}

// dropAfterRefusal keeps, of the errors found after an expansion was
// refused, none: they are about the null that stood in for it.
func (p *parser) dropAfterRefusal() {
	if p.refused >= 0 {
		p.errs = p.errs[:p.refused+1]
	}
}
