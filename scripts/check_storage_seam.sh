#!/bin/sh
# The storage seam (DESIGN.md "Storage and the index"): outside storage/ and
# tests/, no C source names the SQL backend (sqlite3, SQLITE_, libpq, PGconn,
# storage/sqlite.h), holds SQL text in a string literal, or opens its own
# transaction (storage_begin/commit/rollback/end, storage_stmt, storage_fail).
# Above storage/, code calls units of work named for what they do.
#
# Usage: scripts/check_storage_seam.sh [ROOT]   (ROOT: the repository, by default
# the one this script is in). Prints file:line: reason: text for each finding
# and exits 1 when there is one. `make lint` runs it; tests/lint/ tests it.
set -eu
root=${1:-$(dirname "$0")/..}
cd "$root"
find . \( -path ./storage -o -path ./tests -o -path ./build -o -path ./node_modules -o -path ./.git \) \
    -prune -o -type f \( -name '*.c' -o -name '*.h' \) -print |
    LC_ALL=C sort |
    perl -e '
use strict;
use warnings;
my $bad = 0;
my $backend = qr/\bsqlite3|\bSQLITE_|\blibpq\b|\bPGconn\b|storage\/sqlite\.h/;
my $sql = qr/\b(?:SELECT|INSERT\s+INTO|UPDATE\b.*\bSET|DELETE\s+FROM|BEGIN|COMMIT|ROLLBACK|PRAGMA|CREATE\s+TABLE|MATCH)\b/;
my $calls = qr/\b(?:storage_begin|storage_commit|storage_rollback|storage_end|storage_stmt|storage_fail)\s*\(/;
sub report {
    my ($file, $n, $why, $text) = @_;
    $text =~ s/^\s+|\s+$//g;
    print "$file:$n: $why: $text\n";
    $bad = 1;
}
while (my $file = <STDIN>) {
    chomp $file;
    $file =~ s{^\./}{};
    open(my $fh, "<", $file) or die "$file: $!\n";
    my $in_comment = 0;
    while (my $line = <$fh>) {
        my ($code, @literals) = ("");
        my $rest = $line;
        while (length $rest) {
            if ($in_comment) {
                if ($rest =~ s{^.*?\*/}{}s) { $in_comment = 0; next; }
                last;
            }
            if ($rest =~ s{^("(?:[^"\\\n]|\\.)*")}{}) { push @literals, $1; $code .= q{""}; next; }
            if ($rest =~ s{^(\x27(?:[^\x27\\\n]|\\.)*\x27)}{}) { $code .= q{0}; next; }
            if ($rest =~ s{^//.*}{}s) { last; }
            if ($rest =~ s{^/\*}{}) { $in_comment = 1; next; }
            # a quote that opens no literal (an apostrophe in #if 0 text)
            # is taken as code, one character, so the scan always moves on
            $rest =~ s{^([^"\x27/]+|/|.)}{}s and $code .= $1;
        }
        my $text = $code . " " . join(" ", @literals);
        if ($text =~ $backend) { report($file, $., "SQL backend named above storage/", $line); next; }
        if (grep { $_ =~ $sql } @literals) { report($file, $., "SQL text above storage/", $line); next; }
        if ($code =~ $calls) { report($file, $., "raw transaction or statement above storage/ (call a unit of work)", $line); }
    }
    close $fh;
}
exit $bad;
'
