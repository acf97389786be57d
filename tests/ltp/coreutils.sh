#!/bin/bash
# coreutils: text pipelines (sort, uniq, wc, head, tail, tr, cut, seq, xargs, paste, sha256sum) with
# checked output; file operations (mkdir, cp, mv, rm, ln, chmod, stat, touch) in a temp dir; date.
. "$(dirname "$0")/../lib/tst.sh"
tst_need sort uniq wc head tail tr cut seq xargs paste stat date sha256sum cmp
tst_tmpdir
cd "$TST_TMP" || exit 1

# text pipelines
tst_eq "seq | sort -rn | head -3" "$(seq 1 10 | sort -rn | head -3 | tr '\n' ,)" "10,9,8,"
printf 'pear\napple\nfig\napple\npear\napple\n' > fruit
tst_eq "sort | uniq -c | sort -rn | head -1" "$(sort fruit | uniq -c | sort -rn | head -1 | tr -s ' ' | sed 's/^ //')" "3 apple"
tst_eq "sort -u" "$(sort -u fruit | tr '\n' ' ')" "apple fig pear "
tst_eq "uniq -d on sorted input" "$(sort fruit | uniq -d | tr '\n' ' ')" "apple pear "
tst_eq "wc -l" "$(wc -l < fruit)" "6"
tst_eq "wc -c" "$(wc -c < fruit)" "32"
tst_eq "wc -w of a sentence" "$(echo 'the quick brown fox' | wc -w)" "4"
tst_eq "tail -n 2" "$(tail -n 2 fruit | tr '\n' ' ')" "pear apple "
tst_eq "tail -n +5" "$(tail -n +5 fruit | tr '\n' ' ')" "pear apple "
tst_eq "head -c 7" "$(head -c 7 fruit | tr '\n' ' ')" "pear ap"
tst_eq "tr a-z A-Z" "$(echo hello | tr a-z A-Z)" "HELLO"
tst_eq "tr -d digits" "$(echo a1b2c3 | tr -d 0-9)" "abc"
printf 'root:x:0:0\nuser:x:1000:1000\nsvc:x:998:996\n' > passwd
tst_eq "cut -d: -f1,3" "$(cut -d: -f1,3 passwd | tr '\n' ' ')" "root:0 user:1000 svc:998 "
tst_eq "sort -t: -k3,3n | cut" "$(sort -t: -k3,3n passwd | cut -d: -f1 | tr '\n' ' ')" "root svc user "
tst_eq "seq -s" "$(seq -s + 1 5)" "1+2+3+4+5"
tst_eq "seq | paste -sd+ (sum of 1..100 built as text)" "$(( $(seq 1 100 | paste -sd+) ))" "5050"
tst_eq "xargs -n 10 makes 10 lines from 100 words" "$(seq 1 100 | xargs -n 10 | wc -l)" "10"
sum=0
for n in $(seq 1 100 | xargs -P 2 -n 7 echo); do sum=$((sum + n)); done
tst_eq "xargs -P 2 (parallel children) loses no argument" "$sum" "5050"
tst_eq "xargs -I with a command per line" "$(printf 'a\nb\n' | xargs -I{} echo '<{}>' | tr -d '\n')" "<a><b>"
seq 1 5 | xargs -n 1 sh -c 'exit $(( $0 == 3 ? 7 : 0 ))'
tst_eq "xargs reports a failing command with status 123" "$?" "123"
tst_eq "sha256sum of 'abc'" "$(printf abc | sha256sum | cut -d' ' -f1)" \
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
big=$(seq 1 200000 | sort -R | sort -n | tail -1)
tst_eq "sort -R | sort -n over 200000 lines" "$big" "200000"
tst_eq "long pipeline keeps every byte" "$(seq 1 50000 | tr '\n' ' ' | tr ' ' '\n' | grep -c .)" "50000"

# files and directories
mkdir -p a/b/c
tst_ok "mkdir -p makes nested directories" test -d a/b/c
echo data > a/b/c/f
seq 1 1000 > a/big
cp -r a copy
tst_ok "cp -r copies a tree (content equal)" cmp a/b/c/f copy/b/c/f
tst_ok "cp -r copies a larger file exactly" cmp a/big copy/big
mv copy/b/c/f copy/g
if [ ! -e copy/b/c/f ] && [ "$(cat copy/g)" = data ]; then tst_pass "mv moves a file"
else tst_fail "mv copy/b/c/f copy/g"; fi
mv copy moved
tst_ok "mv renames a directory" test -d moved/b/c
ln -s ../a/big moved/link
tst_eq "a symlink reads through" "$(tail -1 moved/link)" "1000"
ln a/big hard
tst_eq "a hard link shares the inode (link count 2)" "$(stat -c %h a/big)" "2"
rm -r a
if [ ! -e a ] && [ "$(tail -1 hard)" = 1000 ]; then tst_pass "rm -r removes a tree, the hard link keeps the data"
else tst_fail "rm -r a"; fi
rm -rf moved hard
tst_eq "the temp dir is empty again" "$(ls -A | wc -l)" "2"

# stat and chmod
printf '12345' > five
tst_eq "stat -c %s" "$(stat -c %s five)" "5"
chmod 640 five
tst_eq "chmod 640 then stat -c %a" "$(stat -c %a five)" "640"
tst_eq "stat -c %F of a file" "$(stat -c %F five)" "regular file"
mkdir d
tst_eq "stat -c %F of a directory" "$(stat -c %F d)" "directory"
touch -d '2001-02-03 04:05:06 UTC' five
tst_eq "touch -d then stat -c %Y" "$(stat -c %Y five)" "981173106"
tst_eq "stat -c %U of a new file is our user" "$(stat -c %U five)" "$(id -un)"

# date
tst_eq "date -u -d @0" "$(date -u -d @0 +%Y-%m-%dT%H:%M:%S)" "1970-01-01T00:00:00"
tst_eq "date arithmetic over a leap day" "$(date -u -d '2024-02-28 + 1 day' +%F)" "2024-02-29"
tst_eq "date -d with a weekday" "$(date -u -d '2024-03-15' +%A)" "Friday"
now=$(date +%s)
if [ "$now" -gt 1600000000 ] 2>/dev/null; then tst_pass "date +%s is a plausible epoch ($now)"
else tst_fail "date +%s gave '$now'"; fi
tst_eq "date -r reads a file's mtime" "$(date -u -r five '+%F %T')" "2001-02-03 04:05:06"

cd / || true
tst_exit
