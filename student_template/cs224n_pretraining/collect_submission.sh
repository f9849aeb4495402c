#!/bin/sh
# Make assignment5_submission.zip: the code (src/, or the .py files here), the data files,
# three parameter files and six prediction files.
rm -f assignment5_submission.zip
if [ -d src ]; then code=src; else code=$(ls *.py); fi
zip -r assignment5_submission.zip $code birth_dev.tsv birth_places_train.tsv wiki.txt \
    vanilla.model.params vanilla.finetune.params perceiver.finetune.params \
    vanilla.nopretrain.dev.predictions vanilla.nopretrain.test.predictions \
    vanilla.pretrain.dev.predictions vanilla.pretrain.test.predictions \
    perceiver.pretrain.dev.predictions perceiver.pretrain.test.predictions
