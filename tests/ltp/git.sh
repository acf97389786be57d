#!/bin/bash
# git: a local repository: init, add, commit with a fixed identity and date (so the commit ids are
# reproducible), log, a branch, a merge with two parents, status clean, fsck. git forks and execs
# many helpers (hooks off, pager off), so this exercises fork/exec/pipes/wait in a real program.
. "$(dirname "$0")/../lib/tst.sh"
tst_need git
tst_tmpdir
cd "$TST_TMP" || exit 1

# no user or system configuration may leak in
export HOME="$TST_TMP" XDG_CONFIG_HOME="$TST_TMP/.config" GIT_CONFIG_NOSYSTEM=1 GIT_PAGER=cat PAGER=cat
export GIT_AUTHOR_NAME="SSI Test" GIT_AUTHOR_EMAIL="test@ssi.invalid"
export GIT_COMMITTER_NAME="SSI Test" GIT_COMMITTER_EMAIL="test@ssi.invalid"
export GIT_AUTHOR_DATE="2024-01-01T00:00:00Z" GIT_COMMITTER_DATE="2024-01-01T00:00:00Z"
unset GIT_DIR GIT_WORK_TREE

git init -q -b main repo > init.log 2>&1
tst_eq "git init" "$?" "0"
cd repo || exit 1

printf 'line one\n' > a.txt
git add a.txt && git commit -q -m "first"
tst_eq "first commit" "$?" "0"
tst_eq "log has one commit" "$(git log --oneline | wc -l)" "1"
tst_eq "commit author is the fixed identity" "$(git log -1 --format='%an <%ae>')" "SSI Test <test@ssi.invalid>"
tst_eq "commit date is the fixed date" "$(git log -1 --format=%ad --date=iso-strict)" "2024-01-01T00:00:00+00:00"
tst_eq "the committed tree is the index's tree" "$(git rev-parse 'HEAD^{tree}')" "$(git write-tree)"
tst_eq "the committed blob is the file's hash" "$(git rev-parse HEAD:a.txt)" "$(git hash-object a.txt)"

git checkout -q -b feature
printf 'feature work\n' > b.txt
git add b.txt && git commit -q -m "add b on feature"
printf 'line one\nline two\n' > a.txt
git commit -q -am "extend a on feature"
tst_eq "feature branch has 3 commits" "$(git rev-list --count feature)" "3"

git checkout -q main
tst_ok "checkout main removes the feature-only file" test ! -e b.txt
printf 'main work\n' > c.txt
git add c.txt && git commit -q -m "add c on main"
git merge -q --no-edit feature > ../merge.log 2>&1
tst_eq "merge of feature into main succeeds" "$?" "0"
tst_eq "the merge commit has two parents" "$(git rev-list --parents -n 1 HEAD | wc -w)" "3"
tst_eq "main has 5 commits after the merge" "$(git rev-list --count HEAD)" "5"
tst_eq "the merged tree has both branches' files" "$(ls | tr '\n' ' ')" "a.txt b.txt c.txt "
tst_eq "a.txt has the feature's change" "$(cat a.txt)" "line one
line two"
tst_eq "git status is clean" "$(git status --porcelain)" ""
tst_eq "log --format lists subjects newest first" "$(git log --format=%s --first-parent | tr '\n' '|')" \
    "Merge branch 'feature'|add c on main|first|"
tst_eq "git branch lists both branches" "$(git branch --format='%(refname:short)' | tr '\n' ' ')" "feature main "

echo dirty >> c.txt
tst_eq "git status sees a modification" "$(git status --porcelain)" " M c.txt"
git stash -q 2>/dev/null
tst_eq "git stash makes the tree clean again" "$(git status --porcelain)" ""
git stash pop -q 2>/dev/null
tst_eq "git stash pop brings the change back" "$(tail -n 1 c.txt)" "dirty"
git checkout -q -- c.txt

git fsck --no-progress > ../fsck.log 2>&1
tst_eq "git fsck finds no problem" "$?" "0"
git gc -q > /dev/null 2>&1
tst_eq "git gc (packs objects with child processes)" "$?" "0"
tst_eq "the history survives gc" "$(git rev-list --count HEAD)" "5"

cd / || true
tst_exit
