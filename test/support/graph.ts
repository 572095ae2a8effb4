// Directed graphs for the structure tests (test/layering.test.ts on the
// SDK's imports, test/firmware-layers.test.ts on the firmware's includes):
// build one from its edges, and find its cycles, each reported as a path
// that ends where it starts, so a failure names the way round.

/** A directed graph: node -> the nodes it has an edge to. */
export type Graph = ReadonlyMap<string, readonly string[]>;

/** The graph of `edges` ([from, to] pairs); a node's targets in first-seen order, once each. */
export function graphOf(edges: Iterable<readonly [string, string]>): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const [from, to] of edges) {
    const targets = graph.get(from) ?? [];
    if (!targets.includes(to)) targets.push(to);
    graph.set(from, targets);
  }
  return graph;
}

/** Strongly connected groups (Tarjan), each sorted: those of 2+ nodes and single nodes with an edge to themselves. */
function cyclicGroups(graph: Graph): string[][] {
  const nodes = [...new Set([...graph.keys(), ...[...graph.values()].flat()])].sort();
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const groups: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, index.size);
    low.set(v, index.get(v) as number);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v) as number, low.get(w) as number));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v) as number, index.get(w) as number));
      }
    }
    if (low.get(v) === index.get(v)) {
      const group: string[] = [];
      let w: string;
      do {
        w = stack.pop() as string;
        onStack.delete(w);
        group.push(w);
      } while (w !== v);
      if (group.length > 1 || graph.get(v)?.includes(v)) groups.push(group.sort());
    }
  };
  for (const v of nodes) if (!index.has(v)) visit(v);
  return groups;
}

/** A shortest way from the group's first node back to it, inside the group (breadth first): [a, b, ..., a]. */
function wayRound(graph: Graph, group: readonly string[]): string[] {
  const members = new Set(group);
  const start = group[0] as string;
  const via = new Map<string, string>();
  const queue = [start];
  let last: string | undefined;
  while (queue.length > 0 && last === undefined) {
    const v = queue.shift() as string;
    for (const w of graph.get(v) ?? []) {
      if (!members.has(w)) continue;
      if (w === start) {
        last = v;
        break;
      }
      if (!via.has(w)) {
        via.set(w, v);
        queue.push(w);
      }
    }
  }
  const path = [start];
  for (let v = last; v !== undefined && v !== start; v = via.get(v)) path.unshift(v);
  return [start, ...path];
}

/**
 * The graph's cycles: one per strongly connected group of nodes, as a path
 * from the group's first node (in sort order) back to it, e.g. ["a", "b", "a"].
 * Empty when the graph has no cycle.
 */
export function findCycles(graph: Graph): string[][] {
  return cyclicGroups(graph).map((group) => wayRound(graph, group));
}

/** One cycle as a path that ends where it starts, or undefined when the graph has none. */
export function findCycle(graph: Graph): string[] | undefined {
  return findCycles(graph)[0];
}
