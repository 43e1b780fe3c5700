"""The inventory pane: groups and hosts as a tree, a filter, and the selection for the next launch.

A small inventory (up to EXPAND_ALL hosts) opens with every group expanded, so its
hosts are on screen at once. In a bigger one, hosts are added to a group's node only
when it is first expanded, so a 5,000-host inventory costs a handful of nodes until
someone looks inside.

Host and group names come from the inventory, which anyone who can write a file or an
inventory script controls: every name is shown through `strip_sgr`, inside `Text`.
The tree keeps the real names in node data, so a selection still targets them.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, Tree
from textual.widgets.tree import TreeNode

from tui.core.planning.inventory import Inventory, limit_for
from tui.core.sanitize import strip_sgr

MARKS = {  # latest result of a host across jobs: a symbol that reads without colour, and a colour
    "ok": ("✓", "success"),
    "changed": ("~", "warning"),
    "failed": ("✗", "error"),
    "unreachable": ("!", "error"),
}
FILTER_CAP = 500
EXPAND_ALL = 40  # hosts: up to this many, every group opens at once

Node = tuple[str, str]  # ("group" | "host", name)


class HostTree(Tree[Node]):
    BINDINGS = [
        Binding("space", "toggle_selected", "Select", id="select-host"),
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("x", "show_vars", "Vars", id="host-vars"),
    ]

    class ShowVars(Message):
        def __init__(self, host: str):
            super().__init__()
            self.host = host

    def action_toggle_selected(self) -> None:
        pane = self.query_ancestor(InventoryPane)
        node = self.cursor_node
        if node is not None and node.data is not None:
            pane.toggle(node.data[1])

    def action_show_vars(self) -> None:
        node = self.cursor_node
        if node is not None and node.data is not None and node.data[0] == "host":
            self.post_message(self.ShowVars(node.data[1]))

    def on_tree_node_selected(self, event: Tree.NodeSelected[Node]) -> None:
        if event.node.data is not None and event.node.data[0] == "host":
            event.stop()
            self.post_message(self.ShowVars(event.node.data[1]))


class InventoryPane(Vertical):
    """Owns what is selected; the app asks it for `limit()` when launching."""

    class SelectionChanged(Message):
        pass

    def __init__(self, **kwargs: object):
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.inventory: Inventory | None = None
        self.selected: list[str] = []
        self.marks: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        yield Input(placeholder="filter hosts", id="host-filter")
        tree: HostTree = HostTree(Text("loading inventory…"), id="host-tree")
        tree.show_root = True
        yield tree

    @property
    def tree(self) -> HostTree:
        return self.query_one(HostTree)

    # -- content ------------------------------------------------------------
    def set_inventory(self, inventory: Inventory) -> None:
        self.inventory = inventory
        self.rebuild()

    def set_error(self, message: str) -> None:
        self.tree.clear()
        self.tree.root.set_label(Text("inventory not loaded", style="bold"))
        self.tree.root.add_leaf(Text(strip_sgr(message)[:300]))

    def rebuild(self) -> None:
        tree = self.tree
        tree.clear()
        inventory = self.inventory
        if inventory is None:
            return
        tree.root.set_label(Text(f"{strip_sgr(inventory.source.name)} ({len(inventory.hosts)} hosts)"))
        tree.root.data = ("group", "all")
        needle = self.query_one("#host-filter", Input).value.strip().lower()
        if needle:
            matches = [h for h in inventory.hosts if needle in h.lower()]
            for host in matches[:FILTER_CAP]:
                tree.root.add_leaf(self._host_label(host), data=("host", host))
            if len(matches) > FILTER_CAP:
                tree.root.add_leaf(Text(f"… {len(matches) - FILTER_CAP} more: narrow the filter", style="dim"))
        else:
            self._add_group(tree.root, "all", top=True, deep=len(inventory.hosts) <= EXPAND_ALL)
        tree.root.expand()

    def _add_group(
        self, node: TreeNode[Node], name: str, top: bool = False, deep: bool = False, path: tuple[str, ...] = ()
    ) -> None:
        """Children of `name` under `node`: its groups now, its hosts when expanded.

        `deep` adds (and expands) every group below too, hosts included: for small inventories.
        """
        assert self.inventory is not None
        group = self.inventory.groups.get(name)
        if group is None:
            return
        path = (*path, name)
        for child in group.children:
            if child == "ungrouped" and not self.inventory.groups.get(child, group).hosts:
                continue
            count = len(self.inventory.hosts_in(child))
            child_node = node.add(self._group_label(child, count), data=("group", child), expand=False)
            child_node.allow_expand = True
            if deep and child not in path:  # a group listed inside itself must not recurse forever
                self._add_group(child_node, child, deep=True, path=path)
                child_node.expand()
        if not top:
            for host in group.hosts:
                node.add_leaf(self._host_label(host), data=("host", host))

    def on_tree_node_expanded(self, event: Tree.NodeExpanded[Node]) -> None:
        node = event.node
        if node.data and node.data[0] == "group" and not node.children and node is not self.tree.root:
            self._add_group(node, node.data[1])

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "host-filter":
            event.stop()
            self.rebuild()

    # -- labels -------------------------------------------------------------
    def _group_label(self, name: str, count: int) -> Text:
        label = Text()
        label.append("● " if name in self.selected else "", style="bold")
        label.append(strip_sgr(name), style="bold")
        label.append(f" ({count})", style="dim")
        return label

    def _host_label(self, host: str) -> Text:
        label = Text()
        label.append("● " if host in self.selected else "", style="bold")
        label.append(strip_sgr(host))
        mark = self.marks.get(host)
        if mark in MARKS:
            symbol, colour = MARKS[mark]
            label.append(f" {symbol}", style=getattr(self.app.current_theme, colour, None) or "")
        return label

    def relabel(self) -> None:
        """Refresh marks and selection dots without rebuilding (keeps expansion and cursor)."""
        if self.inventory is None:
            return
        for node in self._walk(self.tree.root):
            if node.data is None or node is self.tree.root:
                continue
            kind, name = node.data
            if kind == "host":
                node.set_label(self._host_label(name))
            else:
                node.set_label(self._group_label(name, len(self.inventory.hosts_in(name))))

    def _walk(self, node: TreeNode[Node]):
        yield node
        for child in node.children:
            yield from self._walk(child)

    # -- selection and results ----------------------------------------------
    def toggle(self, name: str) -> None:
        if name in self.selected:
            self.selected.remove(name)
        else:
            self.selected.append(name)
        self.relabel()
        self.post_message(self.SelectionChanged())

    def limit(self) -> str | None:
        return limit_for(self.selected)

    def mark_hosts(self, marks: dict[str, str]) -> None:
        if marks == {h: self.marks.get(h) for h in marks}:
            return
        self.marks.update(marks)
        self.relabel()
